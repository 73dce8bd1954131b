// A patrol round's point (web_ui/village/patrol/templates/round.html): the camera plays live
// through live.js where the page has live players, with the camera's snapshot as the picture
// whenever no player runs (no WebRTC, viewer limit reached, live video off); "next" unlocks
// once the minimum look time has passed (the agent refuses an earlier one all the same).
"use strict";

(function () {
  var STILL_MS = 3000;

  function countdown(button) {
    var wait = parseFloat(button.getAttribute("data-wait-seconds") || "0") || 0;
    var line = document.querySelector("[data-patrol-wait]");
    var until = Date.now() + wait * 1000;
    function step() {
      var left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0) {
        button.disabled = false;
        if (line) { line.hidden = true; }
        return;
      }
      if (line) {
        line.hidden = false;
        line.textContent = (line.getAttribute("data-template") || "").replace("{seconds}", left);
      }
      setTimeout(step, 250);
    }
    step();
  }

  function playing(camera) {
    return !!(window.kioskLive && window.kioskLive.players && window.kioskLive.players[camera]);
  }

  function still(panel, camera) {
    var image = panel.querySelector("[data-patrol-still]");
    if (!image) { return; }
    var base = "/cameras/" + encodeURIComponent(camera) + "/snapshot.jpg";
    function refresh() {
      var live = playing(camera);
      image.hidden = live;
      if (!live) { image.src = base + "?t=" + Date.now(); }
      setTimeout(refresh, STILL_MS);
    }
    image.hidden = playing(camera);
    setTimeout(refresh, STILL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.querySelector("[data-patrol-walk]");
    if (!panel) { return; }
    var camera = panel.getAttribute("data-patrol-camera");
    // live.js (loaded before this script) has set up the player by now: start it at once.
    if (window.kioskLive && panel.querySelector("[data-live-camera]")) {
      window.kioskLive.start(camera);
    }
    still(panel, camera);
    var next = panel.querySelector("[data-patrol-next]");
    if (next) { countdown(next); }
  });
})();
