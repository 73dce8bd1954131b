// Small, dependency-free helpers: live camera snapshots and status on the status page.
"use strict";

(function () {
  var SNAPSHOT_MS = 2000;
  var STATUS_MS = 3000;

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

  document.addEventListener("DOMContentLoaded", function () {
    if (document.querySelector("[data-camera-list]")) {
      setInterval(refreshStatus, STATUS_MS);
      var images = document.querySelectorAll("img[data-snapshot]");
      if (images.length) {
        setInterval(function () { images.forEach(refreshSnapshot); }, SNAPSHOT_MS);
      }
    }
  });
})();
