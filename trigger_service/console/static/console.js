// The console's only script: refresh the timeline's rows in place, and stream a run's log.
"use strict";

function refreshRows(tbody) {
  const every = Number(tbody.dataset.refresh || 3000);
  const live = document.getElementById("live");
  setInterval(async () => {
    if (live && !live.checked) return;
    const url = new URL(window.location.href);
    url.searchParams.set("partial", "1");
    url.searchParams.delete("msg");
    url.searchParams.delete("sig");
    try {
      const answer = await fetch(url, { credentials: "same-origin" });
      if (answer.ok) tbody.innerHTML = await answer.text();
    } catch (err) {
      // The service restarting: try again at the next tick.
    }
  }, every);
}

// kfp.local's own lines, as tracking/logs.py reads them: the step list follows the log live.
const ANSI = /\x1b\[[0-9;]*m/g;
const ACTIVE = ["submitting", "pending", "running"];
const STARTED = /Executing task '([^']+)'/;
const ENDED = /Task '([^']+)' finished with status (\w+)/;

function updateSteps(list, text) {
  if (!list) return;
  const steps = new Map();
  for (const line of text.replace(ANSI, "").split("\n")) {
    const ended = ENDED.exec(line);
    const started = STARTED.exec(line);
    if (ended) steps.set(ended[1], ended[2]);
    else if (started && !steps.has(started[1])) steps.set(started[1], "RUNNING");
  }
  if (steps.size === 0) return;
  // A run that ended (canceled, failed) with a step still running: that step was stopped.
  const state = (document.getElementById("run-state") || {}).textContent || "";
  const ended = state && !ACTIVE.includes(state);
  list.replaceChildren(...[...steps].map(([task, reported]) => {
    const status = ended && reported === "RUNNING" ? "STOPPED" : reported;
    const item = document.createElement("li");
    item.className = "step-" + status.toLowerCase();
    item.textContent = task + ": " + status;
    if (status === "STOPPED") item.textContent += " (the run ended " + state + " before it finished)";
    return item;
  }));
}

async function streamLog(pre) {
  const answer = await fetch(pre.dataset.src, { credentials: "same-origin" });
  if (!answer.ok || !answer.body) {
    pre.textContent = "(no log: " + answer.status + ")";
    return;
  }
  const reader = answer.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent += decoder.decode(value, { stream: true });
    updateSteps(document.getElementById("steps"), pre.textContent);
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }
  await showFinalState(pre.dataset.run);
  pre.dataset.ended = "true";
}

// One more term of the run's <dl class="facts">; content is text or a node, never markup.
function addFact(term, content, id) {
  const facts = document.querySelector("dl.facts");
  const dt = document.createElement("dt");
  const dd = document.createElement("dd");
  dt.textContent = term;
  if (typeof content === "string") dd.textContent = content;
  else dd.append(content);
  if (id) dd.id = id;
  if (facts) facts.append(dt, dd);
  return dd;
}

// The log ends when the run does: show its final state, and drop the cancel button.
async function showFinalState(runId) {
  const tag = document.getElementById("run-state");
  if (!tag || !runId) return;
  try {
    const answer = await fetch("/runs/" + encodeURIComponent(runId), { credentials: "same-origin" });
    if (!answer.ok) return;
    const run = await answer.json();
    tag.textContent = run.state;
    tag.className = "tag state-" + run.state;
    const cancel = document.getElementById("cancel-run");
    if (cancel && !ACTIVE.includes(run.state)) cancel.form.remove();
    // What the run ended with (its error, the model it published) is recorded with its final
    // state, after this page was rendered: show it as a reload would.
    if (run.error && !document.getElementById("run-error")) {
      const step = run.failed_step ? " (step " + run.failed_step + ")" : "";
      addFact("error", run.error + step, "run-error").className = "error";
    }
    if (run.model_version != null && !document.getElementById("run-model")) {
      const link = document.createElement("a");
      link.id = "run-model";
      link.href = "/ui/models#" + run.model_name + "-" + run.model_version;
      link.textContent = run.model_name + " version " + run.model_version;
      addFact("model", link);
    }
    const pre = document.getElementById("log");
    if (pre) updateSteps(document.getElementById("steps"), pre.textContent);
  } catch (err) {
    // The service restarting: the page shows the state it was rendered with.
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const rows = document.getElementById("timeline-rows");
  if (rows) refreshRows(rows);
  const log = document.getElementById("log");
  if (log) streamLog(log);
});
