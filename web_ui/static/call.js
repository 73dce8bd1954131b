// Family video calls (视频通话) on the kiosk's call screen and the phone's call page.
// Every browser connects only to the agent: the page sends its offer to the agent's API and the
// agent relays the picture and sound to the other side. Calls are learnt of through server-sent
// events (ringing, answered, ended); the camera and microphone are asked for only after a tap.
// Settings and texts come from <section data-call-app data-call-config data-call-texts>.
"use strict";

(function () {
  var GATHER_MS = 3000;
  var RING_ON_MS = 1000;
  var RING_EVERY_MS = 3000;
  var app, config, texts, mySide;
  var current = null;   // {call, role: "caller"|"callee", pc, stream, joined}
  var incoming = null;  // a call ringing for this side, not taken yet
  var events = null;
  var ringer = null;
  var lastInput = Date.now();

  function text(key, params) {
    var value = texts[key] || key;
    Object.keys(params || {}).forEach(function (name) {
      value = value.split("{" + name + "}").join(params[name]);
    });
    return value;
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function find(selector) { return app.querySelector(selector); }

  function status(message) {
    var line = find("[data-call-status]");
    if (line) { line.textContent = message || ""; }
  }

  function api(path, body) {
    return fetch(config.api + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var error = new Error((data.error && data.error.code) || String(response.status));
          error.status = response.status;
          error.message = (data.error && data.error.message) || "";
          throw error;
        }
        return data;
      });
    });
  }

  function refusal(error) {
    if (error.status === 409 && error.message) { return error.message; }
    if (error.status === 409) { return text("busy"); }
    if (error.status === 403) { return text("forbidden"); }
    return text("failed");
  }

  function otherName(call) {
    return mySide === "kiosk" ? call.family_user : call.household.name;
  }

  // -- ring sound (WebAudio: no audio file) ---------------------------------------------------

  function startRing() {
    stopRing();
    var Context = window.AudioContext || window.webkitAudioContext;
    var context = null;
    try { context = Context ? new Context() : null; } catch (e) { context = null; }
    var beep = function () {
      if (navigator.vibrate) { navigator.vibrate([400, 200, 400]); }
      if (!context) { return; }
      if (context.state === "suspended") { context.resume().catch(function () {}); }
      var gain = context.createGain();
      gain.gain.value = 0.0001;
      gain.connect(context.destination);
      [440, 480].forEach(function (frequency) {
        var tone = context.createOscillator();
        tone.frequency.value = frequency;
        tone.connect(gain);
        tone.start();
        tone.stop(context.currentTime + RING_ON_MS / 1000);
      });
      var now = context.currentTime;
      gain.gain.exponentialRampToValueAtTime(0.25, now + 0.05);
      gain.gain.setValueAtTime(0.25, now + RING_ON_MS / 1000 - 0.05);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + RING_ON_MS / 1000);
    };
    beep();
    ringer = { context: context, timer: setInterval(beep, RING_EVERY_MS) };
  }

  function stopRing() {
    if (!ringer) { return; }
    clearInterval(ringer.timer);
    if (ringer.context) { ringer.context.close().catch(function () {}); }
    if (navigator.vibrate) { navigator.vibrate(0); }
    ringer = null;
  }

  // -- screens --------------------------------------------------------------------------------

  function showIncoming(call) {
    incoming = call;
    var overlay = find("[data-call-incoming]");
    overlay.querySelector("[data-call-who]").textContent =
      text("incoming", { name: otherName(call), household: call.household.name });
    overlay.hidden = false;
    app.classList.add("ringing");
    startRing();
  }

  function hideIncoming() {
    incoming = null;
    find("[data-call-incoming]").hidden = true;
    app.classList.remove("ringing");
    stopRing();
  }

  function showCall(on) {
    find("[data-call-view]").hidden = !on;
    app.classList.toggle("in-call", on);
    var idle = find("[data-call-idle]");
    if (idle) { idle.hidden = on; }
  }

  function renderMissed(list) {
    var box = find("[data-call-missed]");
    if (!box) { return; }
    var items = box.querySelector("[data-call-missed-list]");
    items.innerHTML = "";
    (list || []).forEach(function (call) {
      var item = document.createElement("li");
      var when = new Date(call.created_at * 1000);
      var label = document.createElement("span");
      label.textContent = text("missed_from", {
        name: otherName(call), household: call.household.name,
        time: when.toLocaleString()
      });
      item.appendChild(label);
      item.setAttribute("data-call-missed-id", call.id);
      items.appendChild(item);
    });
    box.hidden = !(list && list.length);
  }

  function refreshMissed() {
    fetch(config.api, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) { renderMissed(data.missed); } })
      .catch(function () { /* the next event refreshes it */ });
  }

  // -- media ----------------------------------------------------------------------------------

  function getMedia() {
    var video = config.video || { width: 480, height: 360, fps: 15 };
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return Promise.reject(new Error("no-media"));
    }
    var audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
    // The agent re-encodes what it relays and scales anything larger down: more than its
    // limits only costs the phone's battery and the agent's CPU. Sizes are only a wish (a
    // phone held upright gives the picture upright); a camera that can meet none of it still
    // takes the call with what it has.
    return navigator.mediaDevices.getUserMedia({
      audio: audio,
      video: {
        width: { ideal: video.width }, height: { ideal: video.height },
        frameRate: { ideal: video.fps, max: video.fps }, facingMode: "user"
      }
    }).catch(function (error) {
      if (error && error.name === "OverconstrainedError") {
        return navigator.mediaDevices.getUserMedia({ audio: audio, video: true });
      }
      throw error;
    });
  }

  function showLocal(stream) {
    var local = find("[data-call-local]");
    local.muted = true;
    local.setAttribute("playsinline", "");
    local.srcObject = stream;
    local.play().catch(function () {});
  }

  function playRemote(stream) {
    var remote = find("[data-call-remote]");
    if (remote.srcObject === stream) { return; }  // a track added later plays by itself
    remote.setAttribute("playsinline", "");
    remote.srcObject = stream;
    // Sound needs a tap on some phones: try it, and where it is refused play muted and offer
    // the button.
    remote.muted = false;
    remote.play().then(function () {
      find("[data-call-sound]").hidden = true;
    }).catch(function (error) {
      if (error && error.name !== "NotAllowedError") { return; }
      remote.muted = true;
      remote.play().catch(function () {});
      find("[data-call-sound]").hidden = false;
    });
  }

  function waitForIce(pc) {
    if (pc.iceGatheringState === "complete") { return Promise.resolve(); }
    return new Promise(function (resolve) {
      pc.addEventListener("icegatheringstatechange", function () {
        if (pc.iceGatheringState === "complete") { resolve(); }
      });
      setTimeout(resolve, GATHER_MS);  // what was gathered by then is enough on a LAN
    });
  }

  function connect(path) {
    var session = current;
    var pc = new RTCPeerConnection({ iceServers: config.iceServers || [] });
    session.pc = pc;
    session.stream.getTracks().forEach(function (track) { pc.addTrack(track, session.stream); });
    var remote = new MediaStream();
    pc.ontrack = function (event) {
      remote.addTrack(event.track);
      playRemote(remote);
    };
    pc.onconnectionstatechange = function () {
      if (current !== session) { return; }
      if (pc.connectionState === "connected") { status(text("in_call")); }
      if (pc.connectionState === "failed") { hangUp("failed"); }
    };
    status(text("connecting"));
    return pc.createOffer()
      .then(function (offer) { return pc.setLocalDescription(offer); })
      .then(function () { return waitForIce(pc); })
      .then(function () {
        return api("/" + encodeURIComponent(session.call.id) + path, {
          sdp: pc.localDescription.sdp, type: pc.localDescription.type
        });
      })
      .then(function (answer) {
        if (current !== session) { return null; }
        return pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
      });
  }

  function release(session) {
    if (!session) { return; }
    if (session.pc) { session.pc.close(); }
    if (session.stream) { session.stream.getTracks().forEach(function (t) { t.stop(); }); }
    ["[data-call-remote]", "[data-call-local]"].forEach(function (selector) {
      var video = find(selector);
      video.srcObject = null;
    });
  }

  function finish(reason) {
    var session = current;
    current = null;
    release(session);
    showCall(false);
    setMuted(false);
    app.removeAttribute("data-call-state");
    status(reason ? text("ended_" + reason) : "");
    refreshMissed();
  }

  // -- actions --------------------------------------------------------------------------------

  function placeCall(body, name) {
    if (current) { return; }
    hideIncoming();
    current = { call: null, role: "caller", pc: null, stream: null, joined: false };
    var session = current;
    status(text("calling", { name: name }));
    getMedia().then(function (stream) {
      session.stream = stream;
      if (current !== session) { release(session); return null; }
      showLocal(stream);
      showCall(true);
      return api("", body);
    }).then(function (data) {
      if (!data || current !== session) { return; }
      session.call = data.call;
      app.setAttribute("data-call-state", "ringing");
      status(text("calling", { name: name }));
    }).catch(function (error) {
      if (current !== session) { return; }
      current = null;
      release(session);
      showCall(false);
      status(error.message === "no-media" || error.name === "NotAllowedError" ||
        error.name === "NotFoundError" ? text("no_media") : refusal(error));
    });
  }

  function answerCall() {
    var call = incoming;
    if (!call || current) { return; }
    hideIncoming();
    current = { call: call, role: "callee", pc: null, stream: null, joined: true };
    var session = current;
    getMedia().then(function (stream) {
      session.stream = stream;
      if (current !== session) { release(session); return null; }
      showLocal(stream);
      showCall(true);
      app.setAttribute("data-call-state", "active");
      return connect("/answer");
    }).catch(function (error) {
      if (current !== session) { return; }
      var media = error.message === "no-media" || error.name === "NotAllowedError" ||
        error.name === "NotFoundError";
      // Without a camera and microphone the call cannot go on: tell the caller.
      api("/" + encodeURIComponent(call.id) + (session.pc ? "/hangup" : "/decline"))
        .catch(function () {});
      finish(null);
      status(media ? text("no_media") : refusal(error));
    });
  }

  function declineCall() {
    var call = incoming;
    if (!call) { return; }
    hideIncoming();
    api("/" + encodeURIComponent(call.id) + "/decline").catch(function () {});
    status("");
  }

  function hangUp(reason) {
    var session = current;
    if (!session) { return; }
    if (session.call) {
      api("/" + encodeURIComponent(session.call.id) + "/hangup").catch(function () {});
    }
    finish(reason || "hangup");
  }

  function setMuted(muted) {
    var button = find("[data-call-mute]");
    if (current && current.stream) {
      current.stream.getAudioTracks().forEach(function (track) { track.enabled = !muted; });
    }
    button.setAttribute("aria-pressed", muted ? "true" : "false");
    button.textContent = muted ? text("unmute") : text("mute");
  }

  // -- events from the agent ------------------------------------------------------------------

  function onState(data) {
    renderMissed(data.missed);
    (data.calls || []).forEach(function (call) {
      if (call.state === "ringing" && call.callee === mySide && !current) { showIncoming(call); }
    });
  }

  function onRinging(call) {
    if (call.callee === mySide && !current && !incoming) { showIncoming(call); }
  }

  function onAnswered(call) {
    if (incoming && incoming.id === call.id) { hideIncoming(); }  // taken on another screen
    var session = current;
    if (!session || !session.call || session.call.id !== call.id) { return; }
    session.call = call;
    if (session.role === "caller" && !session.joined) {
      session.joined = true;
      app.setAttribute("data-call-state", "active");
      connect("/join").catch(function (error) {
        if (current === session) { hangUp("failed"); status(refusal(error)); }
      });
    }
  }

  function onEnded(call) {
    if (incoming && incoming.id === call.id) {
      hideIncoming();
      status(text("ended_" + call.reason));
    }
    if (current && current.call && current.call.id === call.id) {
      finish(call.reason);
    } else {
      refreshMissed();
    }
  }

  function listen() {
    if (events || !window.EventSource) { return; }
    events = new EventSource(config.api + "/events", { withCredentials: true });
    var handle = function (name, callback) {
      events.addEventListener(name, function (event) {
        var data;
        try { data = JSON.parse(event.data); } catch (e) { return; }
        callback(name === "state" ? data : data.call);
      });
    };
    handle("state", onState);
    handle("ringing", onRinging);
    handle("answered", onAnswered);
    handle("ended", onEnded);
  }

  // A phone page left alone stops listening after the session's idle time (an open page must
  // not keep a session alive), and listens again at the next touch. The kiosk's call screen
  // is where the kiosk rests and rings, so it stays; but whoever signed in at the kiosk is
  // signed out after the kiosk's idle time, never in the middle of a call.
  function watchIdle() {
    var idleMs = Number(document.body.getAttribute("data-session-idle-seconds")) * 1000;
    var kioskIdleMs = (config.kioskIdleSeconds || 0) * 1000;
    setInterval(function () {
      var away = Date.now() - lastInput;
      if (current || incoming) { return; }
      if (kioskIdleMs > 0 && away >= kioskIdleMs) {
        var logout = document.querySelector("form[data-logout]");
        if (logout) { logout.submit(); }
      }
      if (mySide !== "kiosk" && idleMs > 0 && events && away >= idleMs) {
        events.close();
        events = null;
      }
    }, 5000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    app = document.querySelector("[data-call-app]");
    if (!app) { return; }
    try {
      config = JSON.parse(app.getAttribute("data-call-config") || "{}");
      texts = JSON.parse(app.getAttribute("data-call-texts") || "{}");
    } catch (e) { return; }
    mySide = config.side;
    ["pointerdown", "touchstart", "keydown"].forEach(function (name) {
      document.addEventListener(name, function () {
        lastInput = Date.now();
        listen();
      }, { capture: true, passive: true });
    });
    app.addEventListener("click", function (event) {
      var target = event.target.closest("button");
      if (!target || !app.contains(target)) { return; }
      if (target.hasAttribute("data-call-to")) {
        var body = { household_id: Number(target.getAttribute("data-household")) };
        if (mySide === "kiosk") { body.username = target.getAttribute("data-call-to"); }
        placeCall(body, target.getAttribute("data-call-name") || "");
      } else if (target.hasAttribute("data-call-answer")) {
        answerCall();
      } else if (target.hasAttribute("data-call-decline")) {
        declineCall();
      } else if (target.hasAttribute("data-call-hangup")) {
        hangUp("hangup");
      } else if (target.hasAttribute("data-call-mute")) {
        setMuted(target.getAttribute("aria-pressed") !== "true");
      } else if (target.hasAttribute("data-call-sound")) {
        var remote = find("[data-call-remote]");
        remote.muted = false;
        remote.play().catch(function () {});
        target.hidden = true;
      } else if (target.hasAttribute("data-call-seen")) {
        api("/missed/seen").then(function () { renderMissed([]); }).catch(function () {});
      }
    });
    window.addEventListener("pagehide", function () {
      if (current && current.call) {
        fetch(config.api + "/" + encodeURIComponent(current.call.id) + "/hangup", {
          method: "POST", credentials: "same-origin", keepalive: true,
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
          body: "{}"
        }).catch(function () {});
      }
    });
    listen();
    watchIdle();
  });
})();
