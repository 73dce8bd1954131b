// Live camera players. Any element with data-live-camera becomes a player: a tap starts a
// WebRTC view (the agent answers the offer; every browser connects only to the agent), and
// where WebRTC is missing or does not connect, the same view comes as MJPEG stills.
// Settings and texts come from <body data-live-config data-live-texts> (signed-in viewers).
"use strict";

(function () {
  var CONNECT_MS = 8000;
  var GATHER_MS = 2000;
  var players = {};

  function settings() {
    try { return JSON.parse(document.body.getAttribute("data-live-config") || "{}"); }
    catch (e) { return {}; }
  }

  function text(key) {
    try {
      var texts = JSON.parse(document.body.getAttribute("data-live-texts") || "{}");
      return texts[key] || key;
    } catch (e) { return key; }
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function pickTier(container, config) {
    var wanted = container.getAttribute("data-live-tier") || "auto";
    var tiers = config.tiers || [];
    if (wanted !== "auto" && tiers.indexOf(wanted) >= 0) { return wanted; }
    // A phone on a mobile network gets the small picture; the station's screen the large one.
    var connection = navigator.connection || {};
    var slow = connection.saveData || /(^|-)2g|3g/.test(connection.effectiveType || "");
    var small = window.innerWidth < 700;
    if ((slow || small) && tiers.indexOf("low") >= 0) { return "low"; }
    if (tiers.indexOf("high") >= 0) { return "high"; }
    return tiers[0] || "low";
  }

  function controls(container) {
    if (!container.querySelector("[data-live-start]")) {
      container.innerHTML =
        '<div class="live-frame"></div>' +
        '<div class="live-controls">' +
        '<button type="button" class="button primary" data-live-start></button>' +
        '<button type="button" class="button" data-live-stop hidden></button>' +
        "</div>" +
        '<p class="live-status" data-live-status aria-live="polite"></p>';
      container.querySelector("[data-live-start]").textContent = text("start");
      container.querySelector("[data-live-stop]").textContent = text("stop");
    }
    if (!container.querySelector(".live-frame")) {
      var frame = document.createElement("div");
      frame.className = "live-frame";
      container.insertBefore(frame, container.firstChild);
    }
  }

  function status(container, message) {
    var line = container.querySelector("[data-live-status]");
    if (line) { line.textContent = message || ""; }
  }

  function showing(container, live) {
    container.querySelector("[data-live-start]").hidden = live;
    container.querySelector("[data-live-stop]").hidden = !live;
    container.classList.toggle("playing", live);
  }

  function waitForIce(pc) {
    if (pc.iceGatheringState === "complete") { return Promise.resolve(); }
    return new Promise(function (resolve) {
      var done = function () {
        if (pc.iceGatheringState === "complete") { resolve(); }
      };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, GATHER_MS);  // what was gathered by then is enough on a LAN
    });
  }

  function sendStop(session) {
    if (!session) { return Promise.resolve(); }
    return fetch("/api/live/sessions/" + encodeURIComponent(session), {
      method: "DELETE", credentials: "same-origin", keepalive: true,
      headers: { "X-CSRF-Token": csrfToken() }
    }).catch(function () { /* the agent drops a silent viewer by itself */ });
  }

  function stop(camera) {
    var player = players[camera];
    if (!player) { return; }
    delete players[camera];
    clearTimeout(player.timer);
    // The agent hears "stop" before the connection closes, so the view ends as a hang-up.
    var pc = player.pc;
    var closing = setTimeout(function () { if (pc) { pc.close(); } }, 1000);
    sendStop(player.session).then(function () {
      clearTimeout(closing);
      if (pc) { pc.close(); }
    });
    var frame = player.container.querySelector(".live-frame");
    var stills = frame.querySelector("img");
    if (stills) {
      // Removing the element alone may leave the MJPEG stream loading; this ends it.
      stills.onerror = null;
      stills.src = "data:,";
    }
    frame.innerHTML = "";
    showing(player.container, false);
  }

  function mjpeg(player, reason) {
    if (player.pc) { player.pc.close(); player.pc = null; }
    sendStop(player.session);
    player.session = null;
    player.mode = "mjpeg";
    var image = document.createElement("img");
    image.className = "live-video";
    image.alt = player.container.getAttribute("data-live-name") || player.camera;
    image.src = "/live/" + encodeURIComponent(player.camera) + "/mjpeg?tier=" +
      encodeURIComponent(player.tier);
    image.onerror = function () { status(player.container, text("failed")); };
    var frame = player.container.querySelector(".live-frame");
    frame.innerHTML = "";
    frame.appendChild(image);
    status(player.container, reason ? text("fallback") : "");
  }

  function video(player) {
    var element = document.createElement("video");
    element.className = "live-video";
    element.autoplay = true;
    element.muted = true;        // muted autoplay is what iOS Safari and Android Chrome allow
    element.playsInline = true;  // stay in the page on an iPhone
    element.setAttribute("playsinline", "");
    var frame = player.container.querySelector(".live-frame");
    frame.innerHTML = "";
    frame.appendChild(element);
    return element;
  }

  function start(container) {
    var camera = container.getAttribute("data-live-camera");
    if (players[camera]) { return; }
    var config = settings();
    var open = Object.keys(players);
    if (config.maxPlayers && open.length >= config.maxPlayers) { stop(open[0]); }
    var player = {
      camera: camera, container: container, tier: pickTier(container, config),
      pc: null, session: null, mode: "webrtc", timer: null
    };
    players[camera] = player;
    showing(container, true);
    status(container, text("connecting"));
    if (!window.RTCPeerConnection) { mjpeg(player, "no-webrtc"); return; }
    var policy = container.getAttribute("data-live-policy") || "all";
    var pc = new RTCPeerConnection({
      iceServers: config.iceServers || [], iceTransportPolicy: policy
    });
    player.pc = pc;
    pc.addTransceiver("video", { direction: "recvonly" });
    var element = video(player);
    pc.ontrack = function (event) {
      element.srcObject = event.streams && event.streams[0]
        ? event.streams[0] : new MediaStream([event.track]);
      var played = element.play();
      if (played && played.catch) { played.catch(function () { /* tap to play */ }); }
    };
    pc.onconnectionstatechange = function () {
      if (players[camera] !== player) { return; }
      if (pc.connectionState === "connected") {
        clearTimeout(player.timer);
        status(container, "");
      } else if (pc.connectionState === "failed") {
        mjpeg(player, "failed");
      }
    };
    pc.createOffer()
      .then(function (offer) { return pc.setLocalDescription(offer); })
      .then(function () { return waitForIce(pc); })
      .then(function () {
        return fetch("/api/live/" + encodeURIComponent(camera) + "/offer", {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
          body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", tier: player.tier })
        });
      })
      .then(function (response) {
        if (players[camera] !== player) { return null; }
        if (response.status === 409) { stop(camera); status(container, text("busy")); return null; }
        if (response.status === 401 || response.status === 403) {
          stop(camera); status(container, text("forbidden")); return null;
        }
        if (!response.ok) { throw new Error("offer refused: " + response.status); }
        return response.json();
      })
      .then(function (answer) {
        if (!answer || players[camera] !== player) { return null; }
        player.session = answer.session;
        player.timer = setTimeout(function () {
          if (players[camera] === player && pc.connectionState !== "connected") {
            mjpeg(player, "timeout");
          }
        }, CONNECT_MS);
        return pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
      })
      .catch(function () {
        if (players[camera] === player) { mjpeg(player, "error"); }
      });
  }

  // For tests and the station's screen: how many frames each player has decoded so far.
  function decoded(camera) {
    var player = players[camera];
    if (!player) { return Promise.resolve(null); }
    if (!player.pc) { return Promise.resolve({ mode: player.mode, framesDecoded: null }); }
    return player.pc.getStats().then(function (report) {
      var frames = 0;
      report.forEach(function (entry) {
        if (entry.type === "inbound-rtp" && entry.kind === "video") {
          frames += entry.framesDecoded || 0;
        }
      });
      return {
        mode: player.mode, framesDecoded: frames, session: player.session,
        state: player.pc.connectionState
      };
    });
  }

  window.kioskLive = { start: function (camera) {
    var container = document.querySelector('[data-live-camera="' + camera + '"]');
    if (container) { start(container); }
  }, stop: stop, decoded: decoded, players: players };

  document.addEventListener("DOMContentLoaded", function () {
    var containers = document.querySelectorAll("[data-live-camera]");
    containers.forEach(function (container) {
      controls(container);
      container.querySelector("[data-live-start]").addEventListener("click", function () {
        start(container);
      });
      container.querySelector("[data-live-stop]").addEventListener("click", function () {
        stop(container.getAttribute("data-live-camera"));
      });
    });
    window.addEventListener("pagehide", function () {
      Object.keys(players).forEach(stop);
    });
  });
})();
