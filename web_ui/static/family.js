// The household PIN keypad on the kiosk's touchscreen (the kiosk has no on-screen keyboard):
// each key types into the PIN box; the form works with a real keyboard too.
"use strict";

(function () {
  document.addEventListener("DOMContentLoaded", function () {
    var input = document.querySelector("input[data-pin]");
    var keypad = document.querySelector("[data-keypad]");
    if (!input || !keypad) { return; }
    var max = Number(input.getAttribute("maxlength")) || 8;
    keypad.addEventListener("click", function (event) {
      var key = event.target.closest("[data-key]");
      if (!key) { return; }
      var value = key.getAttribute("data-key");
      if (value === "clear") {
        input.value = "";
      } else if (value === "back") {
        input.value = input.value.slice(0, -1);
      } else if (input.value.length < max) {
        input.value += value;
      }
    });
  });
})();
