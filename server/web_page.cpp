#include "server/web_page.h"

#include <string_view>
#include <utility>

#include "pipeline/ask_options.h"

namespace kvrag::server {
namespace {

// Everything the page needs is in this string. Text from the server is only
// ever placed with textContent, never parsed as HTML.
constexpr const char* kPage = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kvrag</title>
<style>
  :root { --ink: #1d2330; --muted: #667085; --line: #d9dee8; --accent: #2f6fde; --bg: #f6f7fb; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif;
         color: var(--ink); background: var(--bg); }
  main { max-width: 860px; margin: 0 auto; padding: 28px 20px 60px; }
  h1 { margin: 0; font-size: 26px; letter-spacing: -0.5px; }
  h1 span { color: var(--accent); }
  .sub { margin: 4px 0 20px; color: var(--muted); }
  form, section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px; }
  textarea { width: 100%; min-height: 64px; padding: 10px; font: inherit; border: 1px solid var(--line);
             border-radius: 8px; resize: vertical; }
  .controls { display: flex; flex-wrap: wrap; gap: 14px; align-items: center; margin-top: 10px; }
  label { color: var(--muted); font-size: 13px; }
  select, input[type=number] { margin-left: 4px; padding: 4px 6px; font: inherit; border: 1px solid var(--line);
                               border-radius: 6px; background: #fff; }
  input[type=number] { width: 64px; }
  button { margin-left: auto; padding: 7px 20px; font: inherit; font-weight: 600; color: #fff;
           background: var(--accent); border: 0; border-radius: 8px; cursor: pointer; }
  button:disabled { opacity: 0.55; cursor: progress; }
  section { margin-top: 16px; }
  h2 { margin: 0 0 8px; font-size: 13px; text-transform: uppercase; letter-spacing: 0.6px; color: var(--muted); }
  h2 .meta { text-transform: none; letter-spacing: 0; font-weight: 400; }
  #answer { margin: 0; font-size: 20px; font-weight: 600; min-height: 30px; white-space: pre-wrap; }
  .meta { margin: 6px 0 0; color: var(--muted); font-size: 12px; }
  #sources { list-style: none; margin: 0; padding: 0; }
  #sources li { padding: 10px 0; border-top: 1px solid var(--line); }
  #sources li:first-child { border-top: 0; }
  .source-head { display: flex; gap: 10px; align-items: baseline; }
  .source-title { font-weight: 600; }
  .source-id { color: var(--muted); font-size: 12px; }
  .score { margin-left: auto; color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
  .bar-row { display: flex; align-items: center; gap: 10px; margin: 6px 0; }
  .bar { flex: 1; height: 8px; background: #e9edf5; border-radius: 4px; overflow: hidden; }
  .bar-fill { height: 100%; background: var(--accent); border-radius: 4px; }
  .share { width: 120px; font-size: 12px; color: var(--muted); font-variant-numeric: tabular-nums; }
  .source-text { margin: 0; color: #3b4252; font-size: 13px; }
  .error { margin-top: 16px; padding: 10px 14px; color: #9b1c1c; background: #fdecec;
           border: 1px solid #f5c2c2; border-radius: 8px; }
</style>
</head>
<body data-state="idle">
<main>
  <h1>kv<span>rag</span></h1>
  <p class="sub">Answers written by a T5 decoder cross-attending to the cached keys and values of the retrieved chunks.</p>
  <form id="ask-form">
    <textarea id="question" placeholder="Ask a question about the indexed documents" required></textarea>
    <div class="controls">
      <label>mode
        <select id="mode">
          <option value="cached">cached</option>
          <option value="concat">concat</option>
          <option value="fid">fid</option>
        </select>
      </label>
      <label>k <input id="k" type="number" min="1" max="@MAX_K@" value="@DEFAULT_K@"></label>
      <label>retriever
        <select id="retriever" data-default="@DEFAULT_RETRIEVER@">
          <option value="dense">dense</option>
          <option value="bm25">bm25</option>
          <option value="hybrid">hybrid</option>
        </select>
      </label>
      <button id="ask-button" type="submit">Ask</button>
    </div>
  </form>
  <section id="result" hidden>
    <h2>Answer</h2>
    <p id="answer" aria-live="polite"></p>
    <p id="timings" class="meta"></p>
  </section>
  <section id="sources-section" hidden>
    <h2>Sources <span class="meta">(bar: share of the decoder's cross-attention)</span></h2>
    <ol id="sources"></ol>
  </section>
  <p id="error" class="error" hidden></p>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Splits complete server-sent events off `buffer`, calls onEvent(name, data)
// for each and returns what is left (an event still arriving).
function takeEvents(buffer, onEvent) {
  let end;
  while ((end = buffer.indexOf("\n\n")) >= 0) {
    const block = buffer.slice(0, end);
    buffer = buffer.slice(end + 2);
    let name = "message", data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data += line.slice(5).trim();
    }
    onEvent(name, data ? JSON.parse(data) : null);
  }
  return buffer;
}

function renderSources(sources) {
  const list = $("sources");
  list.replaceChildren();
  for (const source of sources) {
    const item = element("li", "source");
    const head = element("div", "source-head");
    head.append(element("span", "source-title", source.title || source.document_id),
                element("span", "source-id", source.document_id + " · chunk " + source.chunk_id),
                element("span", "score", "score " + source.score.toFixed(3)));
    const row = element("div", "bar-row");
    const bar = element("div", "bar");
    const fill = element("div", "bar-fill");
    const percent = Math.max(0, Math.min(100, source.attention * 100));
    fill.style.width = percent.toFixed(1) + "%";
    bar.append(fill);
    row.append(bar, element("span", "share", "attention " + percent.toFixed(1) + "%"));
    item.append(head, row, element("p", "source-text", source.text));
    list.append(item);
  }
  $("sources-section").hidden = sources.length === 0;
}

function renderDone(result) {
  $("answer").textContent = result.answer;
  const t = result.timings_ms;
  $("timings").textContent = result.mode + " · " + result.generated_tokens + " tokens · total " +
      t.total.toFixed(1) + " ms (retrieve " + t.retrieve.toFixed(1) + ", load K/V " +
      t.load_kv.toFixed(1) + ", encode " + t.encode.toFixed(1) + ", decode " + t.decode.toFixed(1) + ")";
  renderSources(result.sources);
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  document.body.dataset.state = "error";
}

async function ask(question, mode, k, retriever) {
  $("answer").textContent = "";
  $("timings").textContent = "";
  $("sources").replaceChildren();
  $("sources-section").hidden = true;
  $("error").hidden = true;
  $("result").hidden = false;
  $("ask-button").disabled = true;
  document.body.dataset.state = "asking";
  try {
    const response = await fetch("/v1/ask", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({question, mode, k, retriever, stream: true}),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      throw new Error(body && body.error ? body.error.message : "HTTP " + response.status);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "", finished = false;
    const onEvent = (name, data) => {
      if (name === "piece") $("answer").textContent += data.text;
      else if (name === "done") { renderDone(data); finished = true; }
      else if (name === "error") throw new Error(data.error.message);
    };
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer = takeEvents(buffer + decoder.decode(value, {stream: true}), onEvent);
    }
    if (!finished) throw new Error("the answer stream ended early");
    document.body.dataset.state = "done";
  } catch (error) {
    showError(error.message);
  } finally {
    $("ask-button").disabled = false;
  }
}

$("ask-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const question = $("question").value.trim();
  if (question) ask(question, $("mode").value, Number($("k").value), $("retriever").value);
});
$("question").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("ask-button").click(); }
});

$("retriever").value = $("retriever").dataset.default;
// ?q=...&mode=...&k=...&retriever=... asks on load.
const params = new URLSearchParams(location.search);
for (const name of ["mode", "k", "retriever"]) {
  if (params.has(name)) $(name).value = params.get(name);
}
if (params.get("q")) {
  $("question").value = params.get("q");
  ask(params.get("q"), $("mode").value, Number($("k").value), $("retriever").value);
}
</script>
</body>
</html>
)HTML";

// kPage with `marker` replaced by `value` (the marker occurs once).
std::string with_value(std::string page, std::string_view marker, std::string_view value) {
  return page.replace(page.find(marker), marker.size(), value);
}

std::string with_value(std::string page, std::string_view marker, int64_t value) {
  return with_value(std::move(page), marker, std::to_string(value));
}

}  // namespace

const std::string& web_page_html() {
  // The form's k and retriever take their defaults and the cap from the one
  // home of request defaults.
  static const std::string page =
      with_value(with_value(with_value(kPage, "@MAX_K@", kMaxK), "@DEFAULT_K@", kDefaultK),
                 "@DEFAULT_RETRIEVER@", retriever_name(kDefaultRetriever));
  return page;
}

}  // namespace kvrag::server
