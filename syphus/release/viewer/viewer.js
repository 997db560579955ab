/* The Syphus viewer, inlined into index.html's last script element by
   syphus.release.view.render_index. Reads window.SYPHUS_CONFIG (the inline config before it)
   and window.SYPHUS_IMAGE_FILES (data/images.js), then loads data/chunk-NNNNN.js one after the
   other: each calls window.SYPHUS.push([...]). The URL hash holds the view:
   #q=...&scene=...&lang=...&page=N. No network and no fetch calls: it works from file://.
   Inlined as it is, so it may hold no script tag and no HTML comment opener (checked on load). */
(function () {
  "use strict";
  var C = window.SYPHUS_CONFIG, PER = C.per_page || 50;
  var FILES = window.SYPHUS_IMAGE_FILES || {};
  var all = [], matches = [], chunksDone = 0, failed = [], loadedAll = C.chunks === 0;
  var state = {q: "", scene: "", lang: "", page: 1}, lastHash = null;
  function $(id) { return document.getElementById(id); }
  function fmt(n) { return n.toLocaleString("en-US"); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function wanted(e) {
    if (state.scene && e.scene !== state.scene) return false;
    if (state.lang && e.language !== state.lang) return false;
    return !state.q || e._h.indexOf(state.q) >= 0;
  }
  function shown() { return C.group === "query" ? groups(matches) : matches; }
  function pageCount() { return Math.max(1, Math.ceil(shown().length / PER)); }

  window.SYPHUS = {
    push: function (entries) {
      var before = matches.length, end = state.page * PER;
      for (var i = 0; i < entries.length; i++) {
        var e = entries[i];
        e._h = (e.id + "\n" + e.instruction + "\n" + e.answer + "\n" +
                (e.source ? (e.source.query || "") + "\n" + (e.source.annotation || "") : "")).toLowerCase();
        all.push(e);
        if (wanted(e)) matches.push(e);
      }
      chunksDone++;
      if (before < end && matches.length > before) render(); else status();
    }
  };

  function placeholder(id, why) {
    var d = el("div", "missing");
    d.setAttribute("data-image-id", id);
    d.setAttribute("data-missing", "1");
    d.title = id + ": " + why;
    d.appendChild(el("b", null, why));
    d.appendChild(el("span", null, id));
    return d;
  }
  function thumb(id) {
    if (!C.images) return placeholder(id, "no image file");
    var src = "images/" + (FILES[id] || (encodeURIComponent(id) + ".png"));
    var a = el("a"); a.href = src; a.target = "_blank"; a.rel = "noopener";
    var img = new Image();
    img.loading = "lazy"; img.alt = id; img.title = id; img.decoding = "async";
    img.setAttribute("data-image-id", id);
    img.addEventListener("load", function () { img.setAttribute("data-loaded", "1"); });
    img.addEventListener("error", function () {
      if (a.parentNode) a.parentNode.replaceChild(placeholder(id, "missing image"), a);
    });
    img.src = src;
    a.appendChild(img);
    return a;
  }
  function card(e) {
    var art = el("article", "pair");
    art.setAttribute("data-id", e.id);
    art.setAttribute("data-lang", e.language);
    art.setAttribute("data-scene", e.scene);
    var meta = el("div", "meta");
    var link = el("a", "id", e.id); link.href = "#q=" + encodeURIComponent(e.id); link.title = "all languages of " + e.id;
    meta.appendChild(link);
    meta.appendChild(el("span", "badge", e.scene));
    meta.appendChild(el("span", "badge", e.language));
    var n = e.image_ids.length;
    meta.appendChild(el("span", "images", n ? n + (n === 1 ? " image" : " images") : "no images"));
    art.appendChild(meta);
    var body = el("div", "body"), thumbs = el("div", "thumbs");
    for (var i = 0; i < n; i++) thumbs.appendChild(thumb(e.image_ids[i]));
    body.appendChild(thumbs); body.appendChild(qa(e));
    var src = source(e.source);
    if (src) body.appendChild(src);
    art.appendChild(body);
    return art;
  }
  function qa(e) {
    var text = el("div", "text"), ins = el("div", "ins"), ans = el("div", "ans");
    ins.appendChild(el("div", "label", "Instruction"));
    var p1 = el("p", null, e.instruction); p1.dir = "auto"; ins.appendChild(p1);
    ans.appendChild(el("div", "label", "Answer"));
    var p2 = el("p", null, e.answer); p2.dir = "auto"; ans.appendChild(p2);
    text.appendChild(ins); text.appendChild(ans);
    return text;
  }
  /* The annotation the pair was made from, beside it: what to check the answer against. */
  function source(s) {
    if (!s || (s.annotation == null && s.query == null)) return null;
    var box = el("div", "source");
    var label = el("div", "label", "Annotation");
    if (s.query != null) label.appendChild(el("span", "query", s.query));
    box.appendChild(label);
    var pre = el("pre", null, s.annotation != null ? s.annotation : "(not found: the plugin or its file is gone)");
    pre.dir = "auto";
    box.appendChild(pre);
    return box;
  }
  /* group "query": each query once, its annotation, then each input's (candidate's) pairs side by side. */
  function groups(list) {
    var out = [], at = {};
    for (var i = 0; i < list.length; i++) {
      var e = list[i], key = e.source && e.source.query != null ? e.source.query : e.id;
      if (!(key in at)) { at[key] = out.length; out.push({key: key, source: e.source, by: {}}); }
      var g = out[at[key]];
      (g.by[e.language] = g.by[e.language] || []).push(e);
    }
    return out;
  }
  function groupCard(g) {
    var art = el("article", "pair group");
    art.setAttribute("data-query", g.key);
    var meta = el("div", "meta");
    meta.appendChild(el("span", "id", "query " + g.key));
    art.appendChild(meta);
    var src = source(g.source);
    if (src) art.appendChild(src);
    var cols = el("div", "columns"), names = Object.keys(C.languages);
    for (var i = 0; i < names.length; i++) {
      var col = el("section", "column");
      col.setAttribute("data-candidate", names[i]);
      col.appendChild(el("h2", null, names[i]));
      var pairs = g.by[names[i]] || [];
      if (!pairs.length) col.appendChild(el("p", "empty", "no pairs"));
      for (var j = 0; j < pairs.length; j++) {
        var one = qa(pairs[j]);
        one.setAttribute("data-id", pairs[j].id);
        col.appendChild(one);
      }
      cols.appendChild(col);
    }
    art.appendChild(cols);
    return art;
  }
  function status() {
    var items = shown(), pages = pageCount(), from = (state.page - 1) * PER;
    var count = Math.max(0, Math.min(items.length, from + PER) - from);
    var s = count ? "Showing " + fmt(from + 1) + "–" + fmt(from + count) + " of " : "Showing 0 of ";
    s += fmt(items.length) + (C.group === "query" ? " queries (" + fmt(matches.length) + " matching pairs)"
                                                 : " matching pairs");
    s += " · " + fmt(all.length) + " of " + fmt(C.total) + " pairs loaded";
    if (!loadedAll) s += " (chunk " + chunksDone + " of " + C.chunks + ", loading…)";
    if (failed.length) s += " · could not load " + failed.join(", ");
    $("status").textContent = s;
    $("pages").textContent = fmt(pages);
    $("pageno").value = state.page;
    $("pageno").max = pages;
    $("pageinfo2").textContent = "Page " + fmt(state.page) + " of " + fmt(pages);
    var atStart = state.page <= 1, atEnd = state.page >= pages;
    $("prev").disabled = $("prev2").disabled = atStart;
    $("next").disabled = $("next2").disabled = atEnd;
  }
  function render() {
    if (loadedAll && state.page > pageCount()) state.page = pageCount();
    var box = $("pairs"), from = (state.page - 1) * PER;
    var slice = shown().slice(from, from + PER), frag = document.createDocumentFragment();
    for (var i = 0; i < slice.length; i++) frag.appendChild(C.group === "query" ? groupCard(slice[i]) : card(slice[i]));
    if (!slice.length) frag.appendChild(el("p", "empty", loadedAll ? "No pair matches." : "Loading…"));
    box.textContent = "";
    box.appendChild(frag);
    status();
  }
  function refilter() {
    matches = [];
    for (var i = 0; i < all.length; i++) if (wanted(all[i])) matches.push(all[i]);
  }
  function hashOf() {
    var parts = [];
    if (state.q) parts.push("q=" + encodeURIComponent($("q").value));
    if (state.scene) parts.push("scene=" + encodeURIComponent(state.scene));
    if (state.lang) parts.push("lang=" + encodeURIComponent(state.lang));
    if (state.page > 1) parts.push("page=" + state.page);
    return parts.join("&");
  }
  function writeHash() {
    var h = hashOf();
    lastHash = h;
    if (location.hash.replace(/^#/, "") === h) return;
    try { history.replaceState(null, "", "#" + h); } catch (err) { location.replace("#" + h); }
  }
  function readHash() {
    var h = location.hash.replace(/^#/, "");
    var v = {q: "", scene: "", lang: "", page: "1"};
    h.split("&").forEach(function (kv) {
      if (!kv) return;
      var i = kv.indexOf("="), k = i < 0 ? kv : kv.slice(0, i), val = i < 0 ? "" : kv.slice(i + 1);
      try { val = decodeURIComponent(val.replace(/\+/g, " ")); } catch (err) { /* keep as is */ }
      if (k in v) v[k] = val;
    });
    $("q").value = v.q;
    state.q = v.q.trim().toLowerCase();
    state.scene = v.scene; state.lang = v.lang;
    ensureOption("scene", v.scene); ensureOption("lang", v.lang);
    $("scene").value = v.scene; $("lang").value = v.lang;
    state.page = Math.max(1, parseInt(v.page, 10) || 1);
    lastHash = h;
  }
  function ensureOption(sel, value) {
    if (!value) return;
    var s = $(sel);
    for (var i = 0; i < s.options.length; i++) if (s.options[i].value === value) return;
    var o = el("option", null, value + " (0)"); o.value = value; s.appendChild(o);
  }
  function update(resetPage) {
    state.q = $("q").value.trim().toLowerCase();
    state.scene = $("scene").value; state.lang = $("lang").value;
    if (resetPage) state.page = 1;
    refilter(); writeHash(); render();
  }
  function go(page) {
    var p = Math.min(Math.max(1, page), pageCount());
    if (p === state.page) return;
    state.page = p; writeHash(); render(); window.scrollTo(0, 0);
  }
  function fillSelect(sel, counts, names) {
    Object.keys(counts).sort(function (a, b) {
      if (sel === "lang") { if (a === "en") return -1; if (b === "en") return 1; }
      return a < b ? -1 : a > b ? 1 : 0;
    }).forEach(function (k) {
      var o = el("option", null, (names[k] || k) + " (" + fmt(counts[k]) + ")"); o.value = k; $(sel).appendChild(o);
    });
  }
  var LANG = {en: "English", zh: "中文 zh", es: "Español es", ja: "日本語 ja", de: "Deutsch de", fr: "Français fr",
              ko: "한국어 ko", ar: "العربية ar"};
  fillSelect("scene", C.scenes, {});
  fillSelect("lang", C.languages, LANG);
  $("sources").textContent = C.sources.join(" · ") + (C.image_sources.length ? " · images: " + C.image_sources.join(", ") : "");
  var timer = null;
  $("q").addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(function () { update(true); }, 150); });
  $("scene").addEventListener("change", function () { update(true); });
  $("lang").addEventListener("change", function () { update(true); });
  $("prev").onclick = $("prev2").onclick = function () { go(state.page - 1); };
  $("next").onclick = $("next2").onclick = function () { go(state.page + 1); };
  $("pageno").addEventListener("change", function () { go(parseInt($("pageno").value, 10) || 1); });
  document.addEventListener("keydown", function (ev) {
    var t = ev.target.tagName;
    if (t === "INPUT" || t === "SELECT" || t === "TEXTAREA" || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (ev.key === "ArrowLeft") go(state.page - 1);
    else if (ev.key === "ArrowRight") go(state.page + 1);
    else if (ev.key === "/") { ev.preventDefault(); $("q").focus(); }
  });
  window.addEventListener("hashchange", function () {
    if (location.hash.replace(/^#/, "") === lastHash) return;
    readHash(); refilter(); render();
  });
  function pad(i) { var s = String(i); while (s.length < 5) s = "0" + s; return s; }
  function load(i) {
    if (i >= C.chunks) {
      loadedAll = true;
      if ($("pairs").querySelector(".pair")) status(); else render();
      return;
    }
    var s = document.createElement("script");
    s.src = "data/chunk-" + pad(i) + ".js";
    s.onload = function () { setTimeout(function () { load(i + 1); }, 0); };
    s.onerror = function () { failed.push("chunk-" + pad(i) + ".js"); chunksDone++; load(i + 1); };
    document.body.appendChild(s);
  }
  readHash();
  render();
  load(0);
})();
