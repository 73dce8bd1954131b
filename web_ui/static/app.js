// Small, dependency-free helpers: live camera snapshots and status on the status page, the
// kiosk screen's return to its home page when nobody touches it, and its urgent notices.
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

  // The kiosk's own screen, whatever page it shows: an urgent notice (紧急通知) covers the whole
  // screen with a tone until someone there taps the acknowledgement. The picture does not
  // depend on the sound: a browser that refuses to play before a touch still shows it.
  var NOTICE_POLL_MS = 5000;
  var TONE_EVERY_MS = 2500;

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function element(tag, className, attributes) {
    var node = document.createElement(tag);
    node.className = className;
    Object.keys(attributes || {}).forEach(function (name) { node.setAttribute(name, attributes[name]); });
    return node;
  }

  function watchUrgentNotices(url) {
    var overlay = null;
    var parts = {};
    var shownId = null;
    var toneTimer = null;
    var audio = null;

    // Two short beeps from an oscillator: no sound file to ship or load.
    function tone() {
      var Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) { return; }
      try {
        if (!audio) { audio = new Context(); }
        if (audio.state === "suspended") { audio.resume().catch(function () {}); }
        var start = audio.currentTime + 0.02;
        [880, 660].forEach(function (frequency, index) {
          var at = start + index * 0.35;
          var oscillator = audio.createOscillator();
          var gain = audio.createGain();
          oscillator.type = "sine";
          oscillator.frequency.value = frequency;
          gain.gain.setValueAtTime(0.0001, at);
          gain.gain.exponentialRampToValueAtTime(0.5, at + 0.02);
          gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.3);
          oscillator.connect(gain);
          gain.connect(audio.destination);
          oscillator.start(at);
          oscillator.stop(at + 0.32);
        });
      } catch (error) { /* no sound: the notice still holds the screen */ }
    }

    function build() {
      overlay = element("div", "urgent-overlay", {
        role: "alertdialog", "aria-modal": "true", "aria-labelledby": "urgent-title",
        "data-urgent-notice": ""
      });
      overlay.hidden = true;
      var box = element("div", "urgent-box");
      parts.heading = element("p", "urgent-heading");
      parts.title = element("h2", "urgent-title", { id: "urgent-title" });
      parts.photo = element("img", "urgent-photo", { alt: "" });
      parts.photo.hidden = true;
      parts.text = element("p", "urgent-text");
      parts.ack = element("button", "button urgent-ack", { type: "button", "data-urgent-ack": "" });
      parts.ack.addEventListener("click", acknowledge);
      [parts.heading, parts.title, parts.photo, parts.text, parts.ack].forEach(function (node) { box.appendChild(node); });
      overlay.appendChild(box);
      document.body.appendChild(overlay);
    }

    function show(notice, labels) {
      if (!overlay) { build(); }
      if (shownId !== notice.id) {
        shownId = notice.id;
        overlay.setAttribute("data-notice", String(notice.id));
        parts.heading.textContent = labels.heading;
        parts.title.textContent = notice.title;
        parts.text.textContent = notice.text;
        parts.photo.hidden = !notice.photo;
        if (notice.photo) { parts.photo.src = notice.photo; } else { parts.photo.removeAttribute("src"); }
        parts.ack.textContent = labels.ack;
      }
      if (overlay.hidden) {
        overlay.hidden = false;
        document.documentElement.classList.add("urgent-open");
        parts.ack.focus();
      }
      if (!toneTimer) {
        tone();
        toneTimer = setInterval(tone, TONE_EVERY_MS);
      }
    }

    function hide() {
      shownId = null;
      if (overlay) { overlay.hidden = true; }
      document.documentElement.classList.remove("urgent-open");
      if (toneTimer) { clearInterval(toneTimer); toneTimer = null; }
    }

    function poll() {
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (body) {
          if (!body) { return; }
          if (body.urgent) { show(body.urgent, body.labels); } else { hide(); }
        })
        .catch(function () { /* the next round tries again */ });
    }

    function acknowledge() {
      if (shownId === null) { return; }
      parts.ack.disabled = true;
      fetch(url + "/" + shownId + "/ack", {
        method: "POST", credentials: "same-origin", cache: "no-store",
        headers: { "X-CSRF-Token": csrfToken() }
      })
        .then(function (response) {
          // Refused (expired meanwhile): the poll below says what the screen should show.
          if (response.ok) { hide(); }
        })
        .catch(function () { /* still shown; the next tap tries again */ })
        .then(function () { parts.ack.disabled = false; poll(); });
    }

    // A browser that blocked the first tone plays the next one after any touch.
    document.addEventListener("pointerdown", function () {
      if (audio && audio.state === "suspended") { audio.resume().catch(function () {}); }
    }, { capture: true, passive: true });
    poll();
    setInterval(poll, NOTICE_POLL_MS);
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
    var noticeUrl = document.body.getAttribute("data-kiosk-notices");
    if (noticeUrl && window.fetch) { watchUrgentNotices(noticeUrl); }
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
