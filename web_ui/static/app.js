// Small, dependency-free helpers: live camera snapshots and status on the status page, and the
// kiosk screen's return to its home page when nobody touches it.
"use strict";

(function () {
  var SNAPSHOT_MS = 2000;
  var STATUS_MS = 3000;
  var IDLE_CHECK_MS = 1000;
  var INPUT_EVENTS = ["pointerdown", "touchstart", "keydown", "wheel", "input"];
  var lastInput = Date.now();

  function secondsAttribute(name) {
    var value = Number(document.body.getAttribute(name));
    return value > 0 ? value * 1000 : 0;
  }

  // Polls are requests too: without this an open status page would keep a session alive past
  // its idle timeout. After that long without input the page stops refreshing.
  function userIsAway() {
    var idleMs = secondsAttribute("data-session-idle-seconds");
    return idleMs > 0 && Date.now() - lastInput >= idleMs;
  }

  function refreshSnapshot(img) {
    var base = img.getAttribute("src").split("?")[0];
    var next = new Image();
    // Swap only once the new picture has loaded, so a slow link never shows a broken image.
    next.onload = function () { img.src = next.src; };
    next.src = base + "?t=" + Date.now();
  }

  function stateLabel(state) {
    var template = document.querySelector('template[data-state-label="' + state + '"]');
    return template ? template.innerHTML : state;
  }

  function refreshStatus() {
    if (userIsAway()) { return; }
    fetch("/api/cameras", { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : []; })
      .then(function (cameras) {
        cameras.forEach(function (camera) {
          var card = document.querySelector('[data-camera="' + camera.id + '"]');
          if (!card) { return; }
          var badge = card.querySelector("[data-camera-state]");
          badge.textContent = stateLabel(camera.state);
          badge.className = "badge state-" + camera.state;
          card.querySelector("[data-camera-fps]").textContent = camera.fps;
        });
      })
      .catch(function () { /* the next round tries again */ });
  }

  // The kiosk's own screen (the server marks its pages): after kiosk-idle-seconds without a
  // touch, whoever signed in is signed out (the page's own sign-out form, CSRF token included;
  // the server then sends the browser home) and any other page goes back home, so the next
  // villager at the screen finds neither an officer's session nor a half-filled form.
  function watchKioskIdle(idleMs) {
    var leaving = false;
    setInterval(function () {
      if (leaving || Date.now() - lastInput < idleMs) { return; }
      var logout = document.querySelector("form[data-logout]");
      if (logout) {
        leaving = true;
        logout.submit();
      } else if (location.pathname !== "/" || location.search) {
        leaving = true;
        location.assign("/");
      }
    }, IDLE_CHECK_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    INPUT_EVENTS.forEach(function (name) {
      document.addEventListener(name, function () { lastInput = Date.now(); },
        { capture: true, passive: true });
    });
    var kioskIdleMs = secondsAttribute("data-kiosk-idle-seconds");
    if (kioskIdleMs) { watchKioskIdle(kioskIdleMs); }
    // On the kiosk's own screen, whatever page it shows: a ringing call opens the call screen.
    var callEvents = document.body.getAttribute("data-kiosk-calls");
    if (callEvents && window.EventSource) {
      new EventSource(callEvents).addEventListener("ringing", function () {
        window.location.assign("/kiosk/calls");
      });
    }
    if (document.querySelector("[data-camera-list]")) {
      setInterval(refreshStatus, STATUS_MS);
      var images = document.querySelectorAll("img[data-snapshot]");
      if (images.length) {
        setInterval(function () {
          if (!userIsAway()) { images.forEach(refreshSnapshot); }
        }, SNAPSHOT_MS);
      }
    }
  });
})();
