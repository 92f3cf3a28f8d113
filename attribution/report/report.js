// Builds the shaded token spans of a step only when it is near the viewport or expanded,
// from the JSON blob #report-data. Text goes in through textContent only, never as HTML.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var palette = data.palette;
  var scale = data.tokenScale;
  var tip = document.getElementById("tip");
  var CHUNK = 1500;

  // Same piecewise-linear diverging scale as attribution.report.html.diverging_color.
  function shade(v) {
    var t = Math.max(-1, Math.min(1, v / scale));
    var x = (t + 1) * 2;
    var i = Math.min(3, Math.floor(x));
    var f = x - i;
    var a = palette[i], b = palette[i + 1];
    var c = [0, 1, 2].map(function (k) { return Math.round(a[k] + (b[k] - a[k]) * f); });
    return { css: "rgb(" + c.join(",") + ")", dark: Math.abs(t) > 0.7 };
  }

  function fmt(v) {
    return (v < 0 ? "\u2212" : "+") + Math.abs(v).toFixed(3);
  }

  function tokenSpan(step, i) {
    var sp = document.createElement("span");
    var s = shade(step.b * (step.lp[i] - step.rl[i]));
    sp.className = "tok";
    sp.style.backgroundColor = s.css;
    if (s.dark) sp.style.color = "#fff";
    sp.textContent = step.t[i];
    sp.i = i;
    return sp;
  }

  // Fills el with the step's text: all of it when open, a preview when collapsed. Long
  // steps are filled CHUNK tokens at a time, yielding between chunks to keep scrolling smooth.
  function render(el) {
    var step = data.steps[el.dataset.step];
    var open = el.classList.contains("open");
    var want = open ? "all" : "preview";
    if (el.dataset.shown === want) return;
    el.dataset.shown = want;
    if (step.x !== undefined) {
      el.textContent = open ? step.x : step.x.slice(0, step.p);
      return;
    }
    var n = open ? step.t.length : step.p;
    var job = {};
    var i = 0;
    el.job = job;
    el.textContent = "";
    (function fill() {
      if (el.job !== job) return;
      var frag = document.createDocumentFragment();
      for (var end = Math.min(n, i + CHUNK); i < end; i++) frag.appendChild(tokenSpan(step, i));
      el.appendChild(frag);
      if (i < n) setTimeout(fill, 0);
    })();
  }

  // Steps near the viewport (800px ahead) are rendered once, then no longer watched.
  var observer = null;
  if ("IntersectionObserver" in window) {
    observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        if (!e.isIntersecting) return;
        observer.unobserve(e.target);
        render(e.target);
      });
    }, { rootMargin: "800px 0px" });
  }

  function later(el) {
    if (observer) observer.observe(el);
    else render(el);
  }

  // Opens or collapses a step; `lazy` defers the rendering until the step is near the viewport.
  function setOpen(el, open, lazy) {
    el.classList.toggle("open", open);
    el.classList.toggle("collapsed", !open);
    var btn = el.parentNode.querySelector(".toggle");
    if (btn) {
      btn.textContent = open ? "Collapse" : "Show all " + btn.dataset.size;
      btn.setAttribute("aria-expanded", String(open));
    }
    if (lazy) later(el);
    else render(el);
  }

  // The culprit and the gold step are rendered at once; the others when scrolled to.
  document.querySelectorAll(".text[data-step]").forEach(function (el) {
    var step = el.parentNode.classList;
    if (step.contains("culprit") || step.contains("gold")) render(el);
    else later(el);
  });

  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("button");
    if (!btn) return;
    if (btn.classList.contains("toggle")) {
      var el = btn.parentNode.querySelector(".text");
      var closing = el.classList.contains("open");
      setOpen(el, !closing, false);
      // Collapsing from the bottom of a long step would leave the reader far below it.
      if (closing && btn.parentNode.getBoundingClientRect().top < 0) btn.parentNode.scrollIntoView();
    } else if (btn.dataset.act) {
      var open = btn.dataset.act === "expand-all";
      document.querySelectorAll(".step .toggle").forEach(function (b) {
        setOpen(b.parentNode.querySelector(".text"), open, true);
      });
    }
  });

  // Long runs lay out only the steps near the viewport (body.lazy): a jump's target moves while
  // the steps above it get their real height, so the jump is instant and redone until it holds.
  function land(el) {
    var frames = 0, still = 0, last = null;
    (function again() {
      el.scrollIntoView({ block: "start", behavior: "instant" });
      var top = el.getBoundingClientRect().top;
      still = last !== null && Math.abs(top - last) < 1 ? still + 1 : 0;
      last = top;
      if (still < 3 && ++frames < 60) requestAnimationFrame(again);
    })();
  }
  if (document.body.classList.contains("lazy")) {
    document.addEventListener("click", function (ev) {
      var a = ev.target.closest && ev.target.closest('a[href^="#"]');
      var el = a && document.getElementById(a.getAttribute("href").slice(1));
      if (!el || ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
      ev.preventDefault();
      if (location.hash !== a.getAttribute("href")) location.hash = a.getAttribute("href");
      land(el);
    });
    if (location.hash && document.getElementById(location.hash.slice(1))) land(document.getElementById(location.hash.slice(1)));
  }

  // One tooltip for every token: the token, its log-probs and its log-ratio.
  function row(label, value) {
    var tr = document.createElement("tr");
    var a = document.createElement("td"), b = document.createElement("td");
    a.textContent = label;
    b.textContent = value;
    tr.appendChild(a);
    tr.appendChild(b);
    return tr;
  }
  document.addEventListener("mouseover", function (ev) {
    var sp = ev.target;
    if (!sp.classList || !sp.classList.contains("tok")) return;
    var step = data.steps[sp.parentNode.dataset.step];
    var i = sp.i, lp = step.lp[i], rl = step.rl[i], r = step.b * (lp - rl);
    var tt = document.createElement("div");
    tt.className = "tt";
    tt.textContent = step.t[i].replace(/ /g, "\u00b7").replace(/\n/g, "\u21b5").replace(/\t/g, "\u2192");
    var table = document.createElement("table");
    table.appendChild(row("policy log p", fmt(lp)));
    table.appendChild(row("reference log p", fmt(rl)));
    table.appendChild(row("\u03b2\u00b7log(\u03c0/\u03c0ref)", fmt(r)));
    var sw = document.createElement("span");
    sw.className = "sw";
    sw.style.backgroundColor = shade(r).css;
    table.lastChild.lastChild.insertBefore(sw, table.lastChild.lastChild.firstChild);
    tip.textContent = "";
    tip.appendChild(tt);
    tip.appendChild(table);
    tip.hidden = false;
    var box = sp.getBoundingClientRect();
    var w = tip.offsetWidth, h = tip.offsetHeight;
    var left = Math.max(8, Math.min(window.innerWidth - w - 8, box.left));
    var top = box.bottom + 6 + h > window.innerHeight ? box.top - h - 6 : box.bottom + 6;
    tip.style.left = left + "px";
    tip.style.top = top + "px";
  });
  document.addEventListener("mouseout", function (ev) {
    if (ev.target.classList && ev.target.classList.contains("tok")) tip.hidden = true;
  });

  document.documentElement.setAttribute("data-ready-ms", performance.now().toFixed(1));
})();
