// The guest registration form: birth date and sex filled in from a resident ID number, the
// language switch that keeps what was typed, and a draft kept on the server (never in the
// browser: the kiosk's screen is shared) so a session that ends mid-form loses nothing.
"use strict";

(function () {
  var DRAFT_DELAY_MS = 1500;

  function residentId(number) {
    var text = number.replace(/[\s\-()（）]/g, "").toUpperCase();
    if (!/^[0-9]{17}[0-9X]$/.test(text)) { return null; }
    var year = Number(text.slice(6, 10));
    var month = Number(text.slice(10, 12));
    var day = Number(text.slice(12, 14));
    var date = new Date(Date.UTC(year, month - 1, day));
    if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 ||
        date.getUTCDate() !== day) { return null; }
    return {
      birth: text.slice(6, 10) + "-" + text.slice(10, 12) + "-" + text.slice(12, 14),
      sex: Number(text[16]) % 2 ? "male" : "female"
    };
  }

  // The ID number's own birth date and sex go into the boxes beside it (the server checks
  // them again and refuses a mismatch with a message).
  function fillFromId(form, input) {
    var prefix = input.name.slice(0, input.name.length - "id_number".length);
    var type = form.elements[prefix + "id_type"];
    if (!type || type.value !== "resident_id") { return; }
    var found = residentId(input.value);
    if (!found) { return; }
    var birth = form.elements[prefix + "birth_date"];
    if (birth) { birth.value = found.birth; }
    var sex = form.elements[prefix + "sex"];
    if (sex) { sex.value = found.sex; }
  }

  function formFields(form) {
    var fields = {};
    Array.prototype.forEach.call(form.elements, function (element) {
      if (!element.name || element.type === "submit" || element.type === "button") { return; }
      if (element.name === "csrf_token") { return; }
      fields[element.name] = element.value;
    });
    return fields;
  }

  function saveDraft(form) {
    var token = document.querySelector('meta[name="csrf-token"]');
    fetch(form.getAttribute("data-draft-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token ? token.content : "" },
      body: JSON.stringify(formFields(form))
    }).catch(function () { /* the next change tries again */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form[data-register-form]");
    if (!form) { return; }
    var timer = null;
    form.addEventListener("input", function (event) {
      if (event.target.hasAttribute("data-id-number")) { fillFromId(form, event.target); }
      clearTimeout(timer);
      timer = setTimeout(function () { saveDraft(form); }, DRAFT_DELAY_MS);
    });
    // A draft saved after the registration went in would bring the registered guest back.
    form.addEventListener("submit", function () { clearTimeout(timer); });
    form.addEventListener("change", function (event) {
      if (event.target.name && event.target.name.slice(-7) === "id_type") {
        var number = form.elements[event.target.name.slice(0, -7) + "id_number"];
        if (number) { fillFromId(form, number); }
      }
    });
    // The header's language switch would leave the page and drop the form: send the form
    // itself, asking for the other language; the server answers with the values kept.
    var language = document.querySelector('form[action="/language"]');
    if (language) {
      language.addEventListener("submit", function (event) {
        var button = event.submitter;
        if (!button || button.name !== "language") { return; }
        event.preventDefault();
        var wanted = document.createElement("input");
        wanted.type = "hidden";
        wanted.name = "switch_language";
        wanted.value = button.value;
        form.appendChild(wanted);
        var action = document.createElement("input");
        action.type = "hidden";
        action.name = "action";
        action.value = "language";
        form.appendChild(action);
        clearTimeout(timer);
        HTMLFormElement.prototype.submit.call(form);
      });
    }
    var first = document.querySelector("[data-errors] a[data-error-field]");
    if (first) {
      var target = document.getElementById(first.getAttribute("data-error-field"));
      if (target) { target.focus(); }
    }
  });
})();
