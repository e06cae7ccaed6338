// The page of `seqkit serve` (GET /): pick a run, decode an input, see what the model thinks.
// Plain JS over the server's JSON API (docs/serve.md); drawn with the browser's own SVG.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
// Series colours of the learning curves, and of tags (the Okabe-Ito palette, then a few more).
const PALETTE = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442",
                 "#7f7f7f", "#9467bd", "#8c564b", "#17becf", "#bcbd22"];
const IGNORED_METRICS = new Set(["step", "split", "elapsed", "tokens_per_s"]);

const state = { runs: [], run: null, ask: 0, lastDefaults: {} };

// -- talking to the server -------------------------------------------------------------------

// The server's --token, where it has one: typed into the token form when the API answers 401
// (kept for this tab's session), or given as the page's fragment (#token=...).
function token() {
  const found = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (found) return decodeURIComponent(found[1]);
  try { return sessionStorage.getItem("seqkit-serve-token"); } catch (error) { return null; }
}

function authHeaders() {
  const given = token();
  return given ? { Authorization: "Bearer " + given } : {};
}

function askForToken() {
  $("token-form").hidden = false;
  $("token").focus();
}

function useToken(event) {
  event.preventDefault();
  try { sessionStorage.setItem("seqkit-serve-token", $("token").value); } catch (error) { /* private mode */ }
  if (/(?:^#|&)token=/.test(location.hash)) history.replaceState(null, "", location.pathname + location.search);
  $("token-form").hidden = true;
  showError("");
  loadRuns();
}

// JSON as Python writes it: -Infinity, Infinity and NaN are read outside strings too.
function parseJSON(text) {
  try {
    return JSON.parse(text);
  } catch (error) {
    return JSON.parse(text.replace(/"(?:[^"\\]|\\.)*"|-?Infinity|NaN/g, (m) =>
      m[0] === '"' ? m : m === "NaN" ? "null" : m[0] === "-" ? "-1e999" : "1e999"));
  }
}

async function api(path, body) {
  const init = { headers: authHeaders() };
  if (body !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new Error(`cannot reach the server: ${error.message}`);
  }
  return answer(response);
}

// The JSON of an answer, or its {"error": "..."} line thrown.
async function answer(response) {
  const text = await response.text();
  let data;
  try {
    data = parseJSON(text);
  } catch (error) {
    throw new Error(`${response.status} ${response.statusText}: the answer is not JSON`);
  }
  if (!response.ok) {
    if (response.status === 401) askForToken();
    const problem = new Error(data && data.error ? data.error : `${response.status} ${response.statusText}`);
    problem.status = response.status;
    throw problem;
  }
  return data;
}

// POST /stream: the tokens shown as they are written (onToken), then the result event's report,
// which is what /decode answers; an error event, or a plain JSON error before the stream, thrown.
async function stream(path, body, onToken) {
  let response;
  try {
    response = await fetch(path, { method: "POST", body: JSON.stringify(body),
      headers: { ...authHeaders(), "Content-Type": "application/json" } });
  } catch (error) {
    throw new Error(`cannot reach the server: ${error.message}`);
  }
  if (!response.ok || !(response.headers.get("content-type") || "").startsWith("text/event-stream")) {
    return answer(response);
  }
  const reader = response.body.getReader(), decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const name = (/^event: (.*)$/m.exec(block) || [])[1];
      const data = parseJSON(block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n"));
      if (name === "token") onToken(data);
      else if (name === "result") return data;
      else if (name === "error") throw new Error(data.error);
    }
  }
  throw new Error("the stream ended before its result");
}

// -- small helpers ---------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function svgTitle(text) {
  return svg("title", { text });
}

// A log-probability as shown: three decimals, minus infinity as such.
function fmt(x, digits = 3) {
  if (x === null || x === undefined) return "";
  if (x === -Infinity) return "−∞";
  if (x === Infinity) return "∞";
  return Number(x).toFixed(digits);
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

// A probability as a background: white (0) to dark blue (1), and a text colour readable on it.
function shade(p) {
  const q = Math.max(0, Math.min(1, p));
  return { background: `hsl(212, 80%, ${Math.round(97 - 62 * q)}%)`, color: q > 0.55 ? "#fff" : "#111" };
}

// How one character is shown inside a token chip: blanks made visible.
function visible(text) {
  return text.replace(/ /g, "␣").replace(/\n/g, "↵").replace(/\t/g, "⇥");
}

// -- the run ---------------------------------------------------------------------------------

async function loadRuns() {
  try {
    state.runs = (await api("/v1/runs")).runs;
  } catch (error) {
    $("status").textContent = "No runs: the server did not answer.";
    showError(error.message);
    return;
  }
  const select = $("run");
  select.replaceChildren(...state.runs.map((run) => el("option", { value: run.name, text: `${run.name} (${run.task})` })));
  $("status").textContent = `${state.runs.length} run${state.runs.length === 1 ? "" : "s"} served.`;
  const wanted = new URLSearchParams(location.search).get("run");
  if (wanted && state.runs.some((run) => run.name === wanted)) select.value = wanted;
  if (state.runs.length) chooseRun(select.value);
}

function chooseRun(name) {
  const run = state.runs.find((r) => r.name === name);
  state.run = run;
  document.body.dataset.task = run.task;
  document.body.dataset.run = run.name;
  const decode = run.recipe.decode || {};
  $("run-summary").textContent = [run.task, run.cell, run.vocab_size ? `${run.vocab_size} symbols` : null,
    run.checkpoint.split(/[\\/]/).slice(-1)[0]].filter(Boolean).join(" · ");
  $("run-summary").title = run.checkpoint;
  $("input-label").textContent = { char_lm: "Prompt", tagging: "Sentence", translation: "Source text" }[run.task] || "Input";
  // The recipe's prompt, unless the person typed something of their own.
  const input = $("input");
  if (!input.value || input.value === state.lastDefaults.input) {
    input.value = typeof decode.prompt === "string" ? decode.prompt : "";
  }
  state.lastDefaults.input = input.value;
  const strategies = Object.keys(run.strategies);
  $("strategy").replaceChildren(...strategies.map((s) => el("option", { value: s, text: s })));
  $("strategy").value = strategies.includes(decode.strategy) ? decode.strategy : strategies[0];
  // A tagger reads its whole input: no length.
  $("length-field").hidden = run.task === "tagging";
  $("length").value = Number.isInteger(decode.length) ? Math.min(decode.length, run.limits.max_length) : "";
  $("length").max = run.limits.max_length;
  chooseStrategy();
  clearResult();
  showError("");
  loadMetrics(run);
  $("recipe").textContent = yamlish(run.recipe);
}

function chooseStrategy() {
  const run = state.run;
  const strategy = run.strategies[$("strategy").value];
  $("strategy-help").textContent = strategy.help.replace(/``/g, "").replace(/\s+/g, " ");
  const fields = Object.entries(strategy.options).map(([key, option]) => optionField(key, option));
  $("option-fields").replaceChildren(...fields);
  $("options").hidden = fields.length === 0;
  const compare = $("compare");
  // a search (beam, exact) against greedy's: sampling is no search, greedy no rival to itself
  compare.disabled = ["greedy", "sample"].includes($("strategy").value) || !("greedy" in run.strategies);
}

// One labelled control per option, from its type, default, range, choices and the server's cap.
function optionField(key, option) {
  const id = `opt-${key}`;
  const common = { id, name: key, "data-option": key, "data-type": option.type };
  let control;
  if (option.choices) {
    control = el("select", common, ...option.choices.map((c) => el("option", { value: String(c), text: String(c) })));
    if (option.default !== null) control.value = String(option.default);
  } else if (option.type === "boolean") {
    control = el("input", { ...common, type: "checkbox" });
    control.checked = option.default === true;
  } else if (option.type === "integer" || option.type === "number") {
    const max = [option.max, option.cap].filter((v) => v !== null && v !== undefined);
    control = el("input", { ...common, type: "number", step: option.type === "integer" ? "1" : "any",
      min: option.min ?? undefined, max: max.length ? Math.min(...max) : undefined,
      placeholder: option.default === null ? "none" : undefined });
    if (option.default !== null) control.value = String(option.default);
  } else {
    control = el("input", { ...common, type: "text", placeholder: option.default === null ? "none" : undefined });
    if (option.default !== null) control.value = typeof option.default === "string" ? option.default : JSON.stringify(option.default);
  }
  const range = [];
  if (option.min !== null && option.min !== undefined) range.push(`≥ ${option.min}`);
  if (option.max !== null && option.max !== undefined) range.push(`≤ ${option.max}`);
  if (option.cap !== null && option.cap !== undefined) range.push(`server cap ${option.cap}`);
  const hintId = `${id}-hint`;
  control.setAttribute("aria-describedby", hintId);
  if (option.help) control.title = option.help;
  const label = el("label", { for: id, text: key.replace(/_/g, " "), title: option.help || undefined });
  const field = el("div", { class: option.type === "boolean" ? "field checkbox" : "field" });
  if (option.type === "boolean") field.append(control, label);
  else field.append(label, control);
  // the range and cap shown; the help read out with the control, and shown on hover
  field.append(el("p", { id: hintId, class: "muted small hint" }, range.join(", "),
    option.help ? el("span", { class: "visually-hidden", text: (range.length ? ": " : "") + option.help }) : null));
  return field;
}

// The option values of the form: an empty field is left out (the server's default).
function optionValues() {
  const values = {};
  for (const control of $("option-fields").querySelectorAll("[data-option]")) {
    const key = control.dataset.option, type = control.dataset.type;
    if (type === "boolean") {
      values[key] = control.checked;
      continue;
    }
    const raw = control.value.trim();
    if (raw === "") continue;
    if (type === "integer" || type === "number") {
      const number = Number(raw);
      values[key] = Number.isFinite(number) ? number : raw;
    } else if (type === "string" || control.tagName === "SELECT") {
      values[key] = raw;
    } else {
      try { values[key] = JSON.parse(raw); } catch (error) { values[key] = raw; }
    }
  }
  return values;
}

// -- decoding --------------------------------------------------------------------------------

function request(strategy, options) {
  const run = state.run;
  const body = { inputs: [$("input").value], strategy, ...options };
  if (run.task !== "tagging") {
    const length = $("length").value.trim();
    if (length !== "") body.length = Number(length);
    body.details = true;  // per-token log-probabilities, and a translator's attention
  }
  return body;
}

async function decode(event) {
  event.preventDefault();
  const run = state.run;
  if (!run) return;
  const strategy = $("strategy").value;
  const compare = !$("compare").disabled && $("compare").checked;
  const ask = ++state.ask;
  document.body.dataset.state = "busy";  // then "done" or "error": what the tests wait for
  showError("");
  $("decode").disabled = true;
  $("busy").hidden = false;
  const path = `/v1/runs/${encodeURIComponent(run.name)}/decode`;
  const options = optionValues();
  try {
    // greedy and one sample of a model that writes text: streamed, each token shown as it comes
    const streamed = run.task !== "tagging" && (strategy === "greedy" || (strategy === "sample" && (options.num_samples ?? 1) === 1));
    const asked = [streamed ? stream(path.replace(/decode$/, "stream"), request(strategy, options), liveToken(run, ask))
                            : api(path, request(strategy, options))];
    if (compare) asked.push(api(path, request("greedy", {})));
    const [answer, greedy] = await Promise.all(asked);
    if (ask !== state.ask || run !== state.run) return;  // a newer question, or another run
    showResult(run, answer, greedy);
    document.body.dataset.state = "done";
  } catch (error) {
    if (ask === state.ask) {
      clearResult();  // the error line is the answer, not the result of the question before
      showError(error.message);
      document.body.dataset.state = "error";
    }
  } finally {
    if (ask === state.ask) {
      $("decode").disabled = false;
      $("busy").hidden = true;
    }
  }
}

// The text streamed so far, after the input, until the result replaces it.
function liveToken(run, ask) {
  let count = 0;
  return (event) => {
    if (ask !== state.ask) return;
    let live = $("live");
    if (!live) {
      clearResult();
      $("results-empty").hidden = true;
      live = el("p", { id: "live", class: "continuation" }, el("span", { class: "prompt", text: run.task === "char_lm" ? $("input").value : "" }));
      $("result").append(live);
    }
    const text = event.text === null || event.text === undefined ? `[${event.token}]` : event.text;
    live.append(el("span", { class: "streamed", text: (run.task === "translation" && count ? " " : "") + text }));
    live.dataset.tokens = ++count;
    $("result").dataset.streamed = count;
  };
}

function clearResult() {
  delete $("result").dataset.streamed;
  $("results").append($("comparison"));  // back out of the result it was shown in
  $("result").replaceChildren();
  $("comparison").replaceChildren();
  $("comparison").hidden = true;
  $("results-empty").hidden = false;
}

function showResult(run, answer, greedy) {
  const streamed = $("result").dataset.streamed;
  clearResult();
  if (streamed) $("result").dataset.streamed = streamed;  // how many token events came before it
  $("results-empty").hidden = true;
  const result = answer.results[0];
  const box = $("result");
  box.dataset.strategy = answer.strategy;
  const view = { char_lm: showContinuation, translation: showTranslation, tagging: showTags }[run.task] || showGeneric;
  view(box, result, answer);
  if (greedy) showComparison(run, answer, greedy.results[0]);
}

function optionSummary(answer) {
  const parts = Object.entries(answer.options || {}).map(([k, v]) => `${k}=${v}`);
  if (answer.length !== undefined) parts.unshift(`length=${answer.length}`);
  return `${answer.strategy}${parts.length ? " (" + parts.join(", ") + ")" : ""}`;
}

// Token chips, each shaded by its probability, for an output of a details request: one chip per
// token with its own text (a char LM's token_texts: characters or subword pieces, blanks made
// visible; a translation's tokens).
function tokenChips(output, task) {
  const chips = el("span", { class: "tokens" });
  const logProbs = output.token_log_probs || [];
  let pieces = (output.token_texts || output.tokens).map(String);
  if (output.finished && logProbs.length === pieces.length + 1) pieces = [...pieces, "</s>"];
  pieces.forEach((piece, i) => {
    const lp = logProbs[i];
    const attrs = { class: "tok", "data-index": i, text: task === "char_lm" ? visible(piece) : piece };
    if (piece === "</s>" && i === output.tokens.length) attrs.class += " end";
    if (lp !== undefined) {
      const p = Math.exp(lp);
      Object.assign(attrs, { "data-log-prob": lp, "data-p": p, title: `p = ${fmt(p)}  (log p = ${fmt(lp)})` });
    }
    const chip = el("span", attrs);
    if (lp !== undefined) {
      const colours = shade(Math.exp(lp));
      chip.style.background = colours.background;
      chip.style.color = colours.color;
    }
    chips.append(chip);
  });
  return chips;
}

function shadeLegend() {
  const bar = el("span", { class: "shade-bar", "aria-hidden": "true" });
  for (const p of [0, 0.25, 0.5, 0.75, 1]) {
    const swatch = el("span", { text: p.toFixed(2) });
    Object.assign(swatch.style, shade(p));
    bar.append(swatch);
  }
  return el("p", { class: "muted small legend-line" }, "each token shaded by its probability p(token | everything before it): ", bar);
}

// The n-best list: rank, output (shaded tokens), log p, score where the strategy ranks by one.
function nBestTable(outputs, task, selectable) {
  const hasScore = outputs.some((o) => o.score !== undefined);
  const head = el("tr", {}, el("th", { scope: "col", text: "#" }), el("th", { scope: "col", text: "output" }),
    el("th", { scope: "col", text: "log p" }), hasScore ? el("th", { scope: "col", text: "score" }) : null,
    selectable ? el("th", { scope: "col", text: "attention" }) : null);
  const rows = outputs.map((output, i) => {
    const text = output.text !== undefined ? output.text : (output.tags || []).join(" ");
    const cell = el("td", { class: "out-text", "data-text": text });
    if (output.token_log_probs) cell.append(tokenChips(output, task));
    else cell.append(el("span", { class: "plain", text }));
    const row = el("tr", { class: "output", "data-rank": i },
      el("td", { text: String(i + 1) }), cell,
      el("td", { class: "log-prob num", "data-value": output.log_prob, text: fmt(output.log_prob) }),
      hasScore ? el("td", { class: "score num", "data-value": output.score, text: fmt(output.score) }) : null);
    if (selectable) {
      const radio = el("input", { type: "radio", name: "selected-output", value: i, id: `select-${i}`,
        "aria-label": `show the attention of output ${i + 1}`, checked: i === 0 });
      row.append(el("td", {}, radio));
    }
    return row;
  });
  return el("table", { class: "nbest" }, el("thead", {}, head), el("tbody", {}, ...rows));
}

// char_lm: the prompt, its best continuation shaded, the n-best list, the marginals of exact.
function showContinuation(box, result, answer) {
  const best = result.outputs[0];
  box.append(el("p", { class: "muted small", text: optionSummary(answer) }));
  if (best) {
    const line = el("p", { class: "continuation", id: "continuation" },
      el("span", { class: "prompt", text: result.normalized_input }), tokenChips(best, "char_lm"));
    box.append(line, shadeLegend());
  }
  box.append(el("div", { class: "compare-slot" }));
  const what = answer.strategy === "sample" ? "sample" : "output";
  box.append(el("h3", { text: `${result.outputs.length} ${what}${result.outputs.length === 1 ? "" : "s"}` }),
    nBestTable(result.outputs, "char_lm", false));
  if (result.proven === false) box.append(el("p", { class: "warning", text: "not proven exact: the search stopped at max_prefixes" }));
  if (result.marginals) {
    box.append(el("h3", { text: "Marginals p(yₛ = v)" }),
      el("p", { class: "muted small", text: "each position's distribution over symbols, summed over every sequence (outlined: the best output)" }),
      marginalsHeatmap(result.marginals, best));
  } else if (answer.strategy === "exact") {
    box.append(el("p", { class: "muted small", text: "marginals: exact search by enumeration only (a short length, or search = enumeration)" }));
  }
}

// A heatmap drawn in SVG: rows × columns of cells, each with a stable data attribute.
function heatmap({ rowLabels, colLabels, value, cellClass, cellAttrs, title, cell = 18, rowLabelWidth = 60,
                   colLabelHeight = 40, outlined = () => false, id, scale = 1 }) {
  const width = rowLabelWidth + colLabels.length * cell + 4;
  const height = colLabelHeight + rowLabels.length * cell + 4;
  const root = svg("svg", { class: "heatmap", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  if (id) root.setAttribute("id", id);
  const rotate = colLabels.some((label) => label.length * 7 > cell);
  colLabels.forEach((label, c) => {
    const x = rowLabelWidth + c * cell + cell / 2, y = colLabelHeight - 6;
    root.append(rotate ? svg("text", { x: x - 3, y, class: "col-label", transform: `rotate(-50 ${x - 3} ${y})`, text: label })
                       : svg("text", { x, y, class: "col-label centered", text: label }));
  });
  rowLabels.forEach((label, r) => {
    root.append(svg("text", { x: rowLabelWidth - 6, y: colLabelHeight + r * cell + cell * 0.7, class: "row-label", text: label }));
    colLabels.forEach((_, c) => {
      const v = value(r, c);
      const rect = svg("rect", { x: rowLabelWidth + c * cell, y: colLabelHeight + r * cell, width: cell - 1, height: cell - 1,
        class: cellClass + (outlined(r, c) ? " outlined" : ""), fill: shade(v / scale).background, "data-value": v, ...cellAttrs(r, c) });
      rect.append(svgTitle(title(r, c, v)));
      root.append(rect);
    });
  });
  return el("div", { class: "heatmap-box" }, root);
}

function marginalsHeatmap(marginals, best) {
  const symbols = marginals.symbols, table = marginals.table;  // rows: symbols, columns: positions
  const positions = table.length ? table[0].length : 0;
  const largest = Math.max(...table.flat().filter(Number.isFinite), 1e-12);
  return el("div", {}, el("p", { class: "muted small", text: `darkest: p = ${fmt(largest)}, the largest in the table` }), heatmap({
    scale: largest,
    id: "marginals", rowLabels: symbols.map(visible), colLabels: Array.from({ length: positions }, (_, s) => String(s + 1)),
    value: (r, c) => table[r][c], cellClass: "marg-cell", cell: 16, rowLabelWidth: 36, colLabelHeight: 24,
    cellAttrs: (r, c) => ({ "data-symbol": r, "data-position": c }),
    outlined: (r, c) => best && best.tokens[c] === r,
    title: (r, c, v) => `p(y${c + 1} = ${JSON.stringify(symbols[r])}) = ${fmt(v, 4)}`,
  }));
}

// translation: the n-best list, and the selected output's attention over the source.
function showTranslation(box, result, answer) {
  box.append(el("p", { class: "muted small", text: optionSummary(answer) }),
    el("p", { class: "source" }, el("span", { class: "muted", text: "source: " }), el("span", { text: result.normalized_input })));
  if (!result.outputs.length) {
    box.append(el("p", { text: "nothing to decode (an empty input)" }));
    return;
  }
  const hasAttention = result.outputs.some((o) => o.attention);
  const table = nBestTable(result.outputs, "translation", hasAttention);
  box.append(el("div", { class: "compare-slot" }),
    el("h3", { text: `${result.outputs.length} output${result.outputs.length === 1 ? "" : "s"}` }), table, shadeLegend());
  if (!hasAttention) {
    box.append(el("p", { class: "muted small", text: "no attention: this translator has none (model.attention: none)" }));
    return;
  }
  const holder = el("div", { id: "attention-box" });
  box.append(el("h3", { text: "Attention" }), holder);
  const draw = (i) => {
    const output = result.outputs[i];
    const steps = output.attention || [];
    const outLabels = steps.map((_, s) => (s < output.tokens.length ? String(output.tokens[s]) : "</s>"));
    holder.replaceChildren(
      el("p", { class: "muted small", text: `output ${i + 1}: rows are its steps, columns the source tokens the encoder read` }),
      heatmap({
        id: "attention", rowLabels: outLabels, colLabels: result.source_tokens.map(visible), value: (r, c) => steps[r][c],
        cellClass: "attn-cell", cell: 26, rowLabelWidth: 70, colLabelHeight: 46,
        cellAttrs: (r, c) => ({ "data-step": r, "data-source": c }),
        title: (r, c, v) => `${outLabels[r]} ← ${result.source_tokens[c]}: ${fmt(v, 3)}`,
      }));
    holder.dataset.output = i;
  };
  table.addEventListener("change", (event) => {
    if (event.target.name === "selected-output") draw(Number(event.target.value));
  });
  draw(0);
}

function tagColours(tags) {
  const colours = {};
  let next = 0;
  for (const tag of tags) colours[tag] = tag === "O" ? "#e5e7eb" : PALETTE[next++ % PALETTE.length];
  return colours;
}

// tagging: the words coloured by tag, a legend, each word's tag distribution on hover or focus.
function showTags(box, result, answer) {
  box.append(el("p", { class: "muted small", text: optionSummary(answer) }));
  if (!result.tokens || !result.tokens.length) {
    box.append(el("p", { text: "nothing to tag (an empty input)" }));
    return;
  }
  const marginals = result.marginals;
  const tagNames = marginals ? marginals.tags : [...new Set(result.tags)];
  const colours = tagColours(tagNames);
  const words = el("p", { class: "tagged", id: "tagged" });
  const dist = el("div", { id: "tag-dist", class: "tag-dist", "aria-live": "polite" },
    el("p", { class: "muted small", text: "hover over a word, or focus it with Tab, to see its tag distribution" }));
  const showDistribution = (i) => {
    for (const w of words.children) w.classList.toggle("current", Number(w.dataset.position) === i);
    if (!marginals) return;
    const row = marginals.table[i];
    const order = tagNames.map((tag, t) => [tag, row[t]]).sort((a, b) => b[1] - a[1]);
    dist.replaceChildren(el("p", { class: "dist-title" }, el("strong", { text: result.tokens[i] }),
      ` (position ${i + 1}): p(tag)`),
      ...order.map(([tag, p]) => {
        const bar = el("span", { class: "bar" });
        bar.style.width = `${Math.round(p * 100)}%`;
        bar.style.background = colours[tag];
        return el("div", { class: "dist-row", "data-tag": tag, "data-p": p },
          el("span", { class: "dist-tag", text: tag }), el("span", { class: "bar-track" }, bar),
          el("span", { class: "num", text: p.toFixed(3) }));
      }));
    dist.dataset.position = i;
  };
  result.tokens.forEach((token, i) => {
    const tag = result.tags[i];
    const word = el("span", { class: "tag-token" + (result.unknown && result.unknown[i] ? " unknown" : ""),
      tabindex: "0", "data-position": i, "data-tag": tag, title: `${token}: ${tag}`,
      "aria-label": `${token}: ${tag}` },
      el("span", { class: "word", text: token }), el("span", { class: "tag-label", text: tag }));
    word.style.borderColor = colours[tag];
    word.style.background = tag === "O" ? "transparent" : colours[tag] + "33";
    word.addEventListener("mouseenter", () => showDistribution(i));
    word.addEventListener("focus", () => showDistribution(i));
    words.append(word, " ");
  });
  const legend = el("ul", { class: "legend", id: "legend", "aria-label": "tags" },
    ...tagNames.map((tag) => {
      const swatch = el("span", { class: "swatch" });
      swatch.style.background = colours[tag];
      return el("li", { "data-tag": tag }, swatch, tag);
    }));
  box.append(words, legend, el("p", { class: "muted small" }, "log p of the tagging: ",
    el("span", { class: "log-prob num", "data-value": result.log_prob, text: fmt(result.log_prob) })), dist,
    el("div", { class: "compare-slot" }));
  if (result.outputs && result.outputs.length > 1) {
    box.append(el("h3", { text: `${result.outputs.length} taggings` }), nBestTable(result.outputs, "tagging", false));
  }
}

function showGeneric(box, result, answer) {
  box.append(el("pre", { text: JSON.stringify(answer, null, 2) }));
}

// -- greedy beside the chosen strategy -------------------------------------------------------

function bestOf(result) {
  if (result.outputs && result.outputs.length) {
    const o = result.outputs[0];
    return { text: o.text !== undefined ? o.text : o.tags.join(" "), log_prob: o.log_prob, output: o };
  }
  return null;
}

function showComparison(run, answer, greedyResult) {
  const chosen = bestOf(answer.results[0]), greedy = bestOf(greedyResult);
  const box = $("comparison");
  box.hidden = false;
  const slot = $("result").querySelector(".compare-slot");
  if (slot) slot.append(box);
  if (!chosen || !greedy) {
    box.replaceChildren(el("p", { class: "muted", text: "nothing to compare (no output)" }));
    return;
  }
  const differ = chosen.text !== greedy.text;
  box.dataset.differ = String(differ);
  const column = (name, best, cls) => {
    const body = el("div", { class: `compare-col ${cls}`, "data-strategy": name },
      el("h4", { text: name }));
    if (run.task === "tagging") {
      body.append(el("p", { class: "out-text plain", "data-text": best.text, text: best.text }));
    } else {
      const text = el("p", { class: "out-text", "data-text": best.text });
      if (run.task === "char_lm") text.append(el("span", { class: "prompt", text: answer.results[0].normalized_input }));
      text.append(best.output.token_log_probs ? tokenChips(best.output, run.task) : el("span", { text: best.text }));
      body.append(text);
    }
    body.append(el("p", {}, "log p ", el("span", { class: "log-prob num", "data-value": best.log_prob, text: fmt(best.log_prob) })));
    return body;
  };
  const gap = chosen.log_prob - greedy.log_prob;
  let verdict;
  if (!differ) verdict = `greedy and ${answer.strategy} agree: the same best output.`;
  else if (gap > 0) verdict = `greedy's output is ${fmt(gap)} nats less probable than ${answer.strategy}'s: a search error of greedy (×${fmt(Math.exp(gap), 2)} in probability).`;
  else verdict = `they differ, and greedy's output is the more probable by ${fmt(-gap)} nats: ${answer.strategy} ranks by another score (a length penalty) or searched too narrowly.`;
  box.replaceChildren(el("h3", { text: `Compare with greedy` }),
    el("p", { class: differ ? "verdict differ" : "verdict", id: "verdict", text: verdict }),
    el("div", { class: "compare" }, column("greedy", greedy, "greedy"), column(answer.strategy, chosen, "chosen")));
}

// -- learning curves -------------------------------------------------------------------------

async function loadMetrics(run) {
  const holder = $("curves");
  holder.replaceChildren(el("p", { class: "muted small", text: "loading metrics…" }));
  let metrics;
  try {
    metrics = (await api(`/v1/runs/${encodeURIComponent(run.name)}/metrics`)).metrics;
  } catch (error) {
    holder.replaceChildren(el("p", { class: "muted small", text: `no metrics: ${error.message}` }));
    return;
  }
  if (run !== state.run) return;
  state.metrics = metrics;
  const names = [];
  for (const line of metrics) {
    for (const [key, value] of Object.entries(line)) {
      if (!IGNORED_METRICS.has(key) && typeof value === "number" && !names.includes(key)) names.push(key);
    }
  }
  const select = $("metric");
  select.replaceChildren(...names.map((n) => el("option", { value: n, text: n })));
  if (names.includes("loss")) select.value = "loss";
  select.disabled = names.length === 0;
  drawCurves();
}

function drawCurves() {
  const holder = $("curves");
  const metric = $("metric").value;
  const metrics = state.metrics || [];
  const series = new Map();
  for (const line of metrics) {
    const value = line[metric];
    if (typeof value !== "number" || !Number.isFinite(value) || typeof line.step !== "number") continue;
    const split = line.split || "train";
    if (!series.has(split)) series.set(split, []);
    series.get(split).push([line.step, value]);
  }
  if (!series.size) {
    holder.replaceChildren(el("p", { class: "muted small", text: metrics.length ? `no ${metric} logged` : "no metrics (an exported file, or a run that has not logged yet)" }));
    return;
  }
  const all = [...series.values()].flat();
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= Math.abs(y0) * 0.05 || 1; y1 += Math.abs(y1) * 0.05 || 1; }
  const W = 400, H = 220, L = 52, R = 10, T = 10, B = 34;
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const root = svg("svg", { id: "curve", class: "curve", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `${metric} per step, by split` });
  root.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }),
    svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
  for (let i = 0; i <= 3; i++) {
    const y = y0 + ((y1 - y0) * i) / 3;
    root.append(svg("line", { x1: L, x2: W - R, y1: sy(y), y2: sy(y), class: "grid" }),
      svg("text", { x: L - 5, y: sy(y) + 4, class: "tick y", text: tick(y) }));
  }
  const steps = new Set();
  for (let i = 0; i <= 4; i++) steps.add(Math.round(x0 + ((x1 - x0) * i) / 4));  // steps are whole
  for (const x of steps) root.append(svg("text", { x: sx(x), y: H - B + 15, class: "tick x", text: tick(x) }));
  root.append(svg("text", { x: (L + W - R) / 2, y: H - 4, class: "axis-label", text: "step" }));
  const legend = el("ul", { class: "legend" });
  [...series.entries()].forEach(([split, points], i) => {
    const colour = PALETTE[i % PALETTE.length];
    points.sort((a, b) => a[0] - b[0]);
    const line = svg("polyline", { class: "series", "data-split": split, "data-points": points.length, stroke: colour,
      points: points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ") });
    line.append(svgTitle(`${split}: ${metric} from ${tick(points[0][1])} to ${tick(points[points.length - 1][1])}`));
    root.append(line);
    if (points.length === 1) root.append(svg("circle", { cx: sx(points[0][0]), cy: sy(points[0][1]), r: 3, fill: colour }));
    const swatch = el("span", { class: "swatch" });
    swatch.style.background = colour;
    legend.append(el("li", { "data-split": split }, swatch, `${split} (${points.length})`));
  });
  holder.replaceChildren(root, legend);
}

function tick(v) {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toPrecision(2);
}

// -- the recipe, as YAML-ish text ------------------------------------------------------------

function yamlScalar(v) {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") {
    const plain = /^[A-Za-z_/.][\w ./@+,-]*$/.test(v) && !/^(true|false|null|yes|no|on|off)$/i.test(v) && !/\s$/.test(v);
    return plain ? v : JSON.stringify(v);
  }
  if (typeof v === "object") return JSON.stringify(v);  // a list of mappings, inline
  return String(v);
}

// Nested mappings as indented "key: value" lines; lists of scalars inline ([a, b]).
function yamlish(value, indent = "") {
  if (!value || typeof value !== "object" || Array.isArray(value)) return indent + yamlScalar(value);
  return Object.entries(value).map(([key, v]) => {
    if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) {
      return `${indent}${key}:\n${yamlish(v, indent + "  ")}`;
    }
    if (Array.isArray(v) && v.every((x) => x === null || typeof x !== "object")) {
      return `${indent}${key}: [${v.map(yamlScalar).join(", ")}]`;
    }
    return `${indent}${key}: ${v && typeof v === "object" && !Array.isArray(v) ? "{}" : yamlScalar(v)}`;
  }).join("\n");
}

// -- wiring ----------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("run").addEventListener("change", (event) => chooseRun(event.target.value));
  $("strategy").addEventListener("change", chooseStrategy);
  $("metric").addEventListener("change", drawCurves);
  $("decode-form").addEventListener("submit", decode);
  $("token-form").addEventListener("submit", useToken);
  loadRuns();
});
