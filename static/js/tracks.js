/* The track list's small helps (the page works without them):
   - on a phone, the search and the bulk form fold away so the tracks come
     first (they stay open on wider screens and without JavaScript);
   - a "select every track on this page" box for the bulk form, and while
     tracks are ticked a bar at the foot of the screen that leads back to it;
   - a column's help closes on Escape (focus back on its button) and on a
     click elsewhere. */
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") {
      return;
    }
    document.querySelectorAll("details.col-help[open]").forEach(function (help) {
      help.open = false;
      if (help.contains(document.activeElement)) {
        help.querySelector("summary").focus();
      }
    });
  });
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.col-help[open]").forEach(function (help) {
      if (!help.contains(event.target)) {
        help.open = false;
      }
    });
  });
  if (window.matchMedia("(max-width: 40rem)").matches) {
    document.querySelectorAll("details[data-fold-narrow]").forEach(function (fold) {
      if (!fold.querySelector(".form-errors")) {
        fold.open = false;
      }
    });
  }
  var all = document.getElementById("select-all");
  if (!all) {
    return;
  }
  var boxes = function () {
    return document.querySelectorAll('input[name="tracks"][form="bulk-form"]');
  };
  var bar = document.getElementById("ticked-bar");
  var count = document.getElementById("ticked-count");
  var ticked = function () {
    return Array.prototype.slice.call(boxes()).filter(function (box) {
      return box.checked;
    }).length;
  };
  var showBar = function (number) {
    bar.hidden = number === 0;
    count.textContent = number === 1 ? "1 track ticked" : number + " tracks ticked";
  };
  all.hidden = false;
  all.addEventListener("change", function () {
    boxes().forEach(function (box) {
      box.checked = all.checked;
    });
    showBar(ticked());
  });
  document.addEventListener("change", function (event) {
    if (event.target !== all && event.target.name === "tracks") {
      var number = ticked();
      var total = boxes().length;
      all.checked = number === total && number > 0;
      all.indeterminate = number > 0 && number < total;
      showBar(number);
    }
  });
  document.getElementById("ticked-change").addEventListener("click", function (event) {
    event.preventDefault();
    var form = document.getElementById("bulk-form");
    form.closest("details").open = true;
    document.getElementById("scope-selected").checked = true;
    form.scrollIntoView({block: "center"});
    document.getElementById("bulk-use").focus();
  });
  showBar(ticked());  // boxes a reload kept ticked
})();
