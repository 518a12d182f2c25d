// Progressive enhancements only: every page works without this script.
(function () {
  "use strict";
  // Move focus to the error summary so screen-reader and keyboard users hear it first.
  var summary = document.querySelector("[data-error-summary]");
  if (summary) { summary.focus(); }
  // Make the error summary's links focus the field itself rather than only scrolling to it.
  document.querySelectorAll("[data-error-summary] a[href^='#']").forEach(function (a) {
    a.addEventListener("click", function (e) {
      var field = document.getElementById(a.getAttribute("href").slice(1));
      if (field) { e.preventDefault(); field.focus(); }
    });
  });
  // A copy button beside text meant to be pasted elsewhere; without the script the text is
  // still there to select.
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    var status = document.querySelector("[data-copied='" + button.getAttribute("data-copy") + "']");
    if (!field) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var done = function () { if (status) { status.textContent = "Copied"; } };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          field.select();
          if (document.execCommand("copy")) { done(); }
        });
      } else {
        field.select();
        if (document.execCommand("copy")) { done(); }
      }
    });
  });
  // A saved reason chosen from the list puts its words in the reasons box, to be edited there;
  // words already written are kept, with the saved ones after them.
  document.querySelectorAll("select[data-reason-into]").forEach(function (select) {
    var box = document.getElementById(select.getAttribute("data-reason-into"));
    if (!box) { return; }
    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      var text = option && option.getAttribute("data-text");
      if (!text) { return; }
      box.value = box.value.trim() ? box.value.replace(/\s+$/, "") + "\n\n" + text : text;
      box.dispatchEvent(new Event("input"));
    });
  });
  // Character counts on long fields.
  document.querySelectorAll("textarea[data-maxlength]").forEach(function (field) {
    var max = parseInt(field.getAttribute("data-maxlength"), 10);
    var message = document.getElementById(field.id + "-count");
    if (!message || !max) { return; }
    var update = function () {
      var left = max - field.value.length;
      message.textContent = left >= 0
        ? "You have " + left + " character" + (left === 1 ? "" : "s") + " remaining"
        : "You have " + (-left) + " character" + (left === -1 ? "" : "s") + " too many";
      message.classList.toggle("char-count--over", left < 0);
    };
    field.addEventListener("input", update);
    update();
  });
})();
