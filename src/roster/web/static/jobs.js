// The jobs table: newest first, paginated, polling while any job on the page is queued or running.

import { ApiError, P, api, download, seg } from "./api.js";
import { $, errorNode, formatTime, h, notice, num, pagerState } from "./dom.js";

export const ACTIVE = new Set(["IN_QUEUE", "IN_PROGRESS"]);
export const BULK = "BULK_ADD_PARTICIPANTS";
export const REVERT = "REVERT_BULK_ADD_PARTICIPANTS";
export const STATUS_LABELS = {
  IN_QUEUE: "Queued",
  IN_PROGRESS: "Running",
  COMPLETED: "Completed",
  FAILED: "Failed",
  CANCELLED: "Cancelled",
};
const PAGE_SIZE = 20;
const POLL_MS = 1000;
const RETRY_MS = 5000;

export function statusBadge(job) {
  // A running job asked to stop finishes its current batch first.
  const label = job.cancelRequested && ACTIVE.has(job.status) ? "Cancelling…" : STATUS_LABELS[job.status] || job.status;
  return h("span", { class: "badge", dataset: { status: job.status } }, label);
}

export const EXTRACT = "EXTRACT_PARTICIPANTS";

/** A finished, real (not dry-run) upload job may be reverted once; the server says whether it was already. */
export function revertible(job) {
  return job.type === BULK && !job.dryRun && !ACTIVE.has(job.status);
}

/** What reverting `job` will do, for the confirmation. */
export function revertQuestion(job) {
  const c = job.counts || {};
  return (
    `Revert ${job.sourceFileName}? The ${num(c.created)} participant(s) it created are deleted with their access codes, ` +
    `and the ${num(c.updated)} it updated get back their values from before the job (a registration it made is undone). ` +
    "A participant changed since the job is left as it is. This runs as a new job and cannot itself be reverted."
  );
}

/** "120 of 500 rows" and the outcome counts, as text (an extract: its participants). */
export function countsText(job) {
  const c = job.counts || {};
  if (job.type === EXTRACT) {
    const n = typeof c.rows === "number" ? c.rows : 0;
    if (job.status === "COMPLETED") return `${num(n)} participant${n === 1 ? "" : "s"} extracted`;
    return typeof c.rows === "number" ? `${num(c.processed)} of ${num(c.rows)} participants` : `${num(c.processed)} participants written`;
  }
  const done = typeof c.rows === "number" ? `${num(c.processed)} of ${num(c.rows)} rows` : `${num(c.processed)} rows processed`;
  if (job.type === REVERT) return `${done} · ${num(c.deleted)} deleted · ${num(c.restored)} restored · ${num(c.failed)} failed`;
  return `${done} · ${num(c.created)} created · ${num(c.updated)} updated · ${num(c.unchanged)} unchanged · ${num(c.failed)} failed`;
}

export function progressBar(job) {
  const bar = h("progress", { max: "1", "aria-label": `Progress of ${job.sourceFileName}` });
  const rowsKnown = typeof (job.counts || {}).rows === "number";
  // Rows not counted yet while running: an indeterminate bar says "working" without a made-up number.
  if (!(job.status === "IN_PROGRESS" && !rowsKnown)) bar.value = Math.max(0, Math.min(1, Number(job.progress) || 0));
  return bar;
}

export function jobError(job) {
  return h("div", { class: "job-error" }, job.errorMessage ? `${job.errorMessage} ` : "", h("code", {}, job.error));
}

export function warningText(warning) {
  // The upload's warnings are sentences (e.g. unknown columns that were ignored).
  return typeof warning === "string" ? warning : JSON.stringify(warning);
}

export function fileStem(name) {
  return (name || "job").replace(/\.(csv|xlsx)$/i, "");
}

export function jobPath(uuid, suffix = "") {
  return `${P}/jobs/${seg(uuid)}${suffix}`;
}

export class JobsTable {
  constructor({ onView, onDeleted }) {
    this.onView = onView;
    this.onDeleted = onDeleted;
    this.body = $("jobs-body");
    this.message = $("jobs-message");
    this.empty = $("jobs-empty");
    this.pageLabel = $("jobs-page");
    this.prev = $("jobs-prev");
    this.next = $("jobs-next");
    this.me = null;
    this.scope = null;
    this.page = 1;
    this.pages = 1;
    this.timer = null;
    this.generation = 0;
    this.rows = new Map(); // uuid → {json, job, tr}: unchanged rows are kept, so focus and clicks survive a poll
    this.stopping = null; // the job whose cancel this page asked for, until it has stopped
    this.prev.addEventListener("click", () => this.goTo(this.page - 1));
    this.next.addEventListener("click", () => this.goTo(this.page + 1));
    $("jobs-refresh").addEventListener("click", () => this.reload());
  }

  /** scope: {study, site, allSites}; me: the caller from GET P/me. */
  show(me, scope) {
    this.me = me;
    this.scope = scope;
    this.page = 1;
    this.rows.clear();
    this.body.replaceChildren();
    notice(this.message, "");
    this.reload();
  }

  stop() {
    this.generation += 1;
    clearTimeout(this.timer);
    this.timer = null;
  }

  reset() {
    this.stop();
    this.scope = null;
    this.rows.clear();
    this.body.replaceChildren();
    this.pageLabel.textContent = "";
    notice(this.message, "");
  }

  goTo(page) {
    this.page = Math.max(1, Math.min(page, this.pages));
    this.reload();
  }

  url() {
    const { study, site, allSites } = this.scope;
    const base = allSites ? `${P}/studies/${seg(study)}/jobs` : `${P}/studies/${seg(study)}/sites/${seg(site)}/jobs`;
    return `${base}?page=${this.page}&pageSize=${PAGE_SIZE}`;
  }

  async reload() {
    if (!this.scope) return;
    this.stop();
    const generation = this.generation;
    let data;
    try {
      data = await api(this.url());
    } catch (error) {
      if (generation !== this.generation) return;
      if (error instanceof ApiError && error.status === 401) return;
      notice(this.message, errorNode(error), "error");
      // A passing network problem should not freeze a running job's progress: try again later.
      if ([...this.rows.values()].some((r) => ACTIVE.has(r.job.status))) this.schedule(generation, RETRY_MS);
      return;
    }
    if (generation !== this.generation) return; // a newer reload (other site, other page) won
    if (this.message.classList.contains("error")) notice(this.message, "");
    this.pages = Math.max(1, Math.ceil(data.total / data.pageSize));
    if (data.items.length === 0 && this.page > 1) {
      this.goTo(this.pages); // the last page emptied (jobs deleted elsewhere)
      return;
    }
    this.render(data);
    if (data.items.some((job) => ACTIVE.has(job.status))) this.schedule(generation, POLL_MS);
  }

  schedule(generation, ms) {
    this.timer = setTimeout(() => {
      if (generation === this.generation) this.reload();
    }, ms);
  }

  render(data) {
    const focused = document.activeElement;
    const focusKey = focused && this.body.contains(focused) ? [focused.closest("tr")?.dataset.job, focused.dataset.action] : null;
    const rows = new Map();
    for (const job of data.items) {
      const json = JSON.stringify(job);
      const known = this.rows.get(job.uuid);
      rows.set(job.uuid, known && known.json === json ? known : { json, job, tr: this.row(job) });
    }
    this.rows = rows;
    const stopped = this.stopping && rows.get(this.stopping);
    if (stopped && !ACTIVE.has(stopped.job.status)) {
      this.stopping = null;
      notice(this.message, `${stopped.job.sourceFileName}: ${STATUS_LABELS[stopped.job.status] || stopped.job.status}.`, "info");
    }
    this.body.replaceChildren(...[...rows.values()].map((r) => r.tr));
    this.empty.hidden = rows.size > 0;
    const label = `Page ${this.page} of ${this.pages} · ${num(data.total)} job${data.total === 1 ? "" : "s"}`;
    // Only on change: the label is a live region, and polls must not make screen readers repeat it.
    if (this.pageLabel.textContent !== label) this.pageLabel.textContent = label;
    pagerState(this.prev, this.next, this.page, this.pages);
    if (focusKey) {
      const [uuid, action] = focusKey;
      const tr = this.rows.get(uuid)?.tr;
      const target = tr && tr.querySelector(`[data-action="${action}"]`);
      if (target && !target.disabled) target.focus();
    }
  }

  row(job) {
    const name = job.sourceFileName;
    const active = ACTIVE.has(job.status);
    const failed = (job.counts || {}).failed || 0;
    const canDelete = this.me && (this.me.admin || (job.createdBy || "").toLowerCase() === this.me.username.toLowerCase());
    const warnings = Array.isArray(job.warnings) ? job.warnings : [];

    const button = (action, label, aria, handler, extra = {}) =>
      h("button", { type: "button", class: "small", "aria-label": aria, dataset: { action }, onclick: (e) => handler(e.currentTarget), ...extra }, label);

    const extract = job.type === EXTRACT;
    // An extract has no log to view and no failed rows; its file exists once it has completed.
    const actions = extract
      ? [
          button("download", "Download", `Download ${name}`, () => this.fetchFile(jobPath(job.uuid, "/downloadFile"), name), {
            disabled: job.status !== "COMPLETED",
            title: job.status !== "COMPLETED" ? (active ? "The file is not ready yet" : "This extract has no file") : null,
          }),
        ]
      : [
          button("view", "View", `View log of ${name}`, (btn) => this.onView(job, btn)),
          button("download", "Download", `Download log of ${name}`, () => this.fetchFile(jobPath(job.uuid, "/downloadFile"), `${fileStem(name)}-log.csv`)),
          button("failed", "Failed rows", `Download failed rows of ${name}`, () => this.fetchFile(jobPath(job.uuid, "/failedRows"), `${fileStem(name)}-failed-rows.csv`), {
            // A revert has no upload to take failed rows from: its log says which participants it left alone.
            disabled: failed === 0 || job.type !== BULK,
            title: failed === 0 ? "No failed rows" : job.type !== BULK ? "Only for uploads" : null,
          }),
        ];
    if (revertible(job)) actions.push(button("revert", "Revert", `Revert ${name}`, (btn) => this.revert(job, btn), { class: "small warn" }));
    if (active) actions.push(button("cancel", "Cancel", `Cancel ${name}`, (btn) => this.cancel(job, btn), { disabled: Boolean(job.cancelRequested), class: "small warn" }));
    if (canDelete) actions.push(button("delete", "Delete", `Delete ${name}`, () => this.remove(job), { class: "small danger" }));

    const status = [statusBadge(job)];
    if (job.error) status.push(jobError(job));

    // One wrapper per cell: on phones the cell becomes a two-column grid of its label and this wrapper.
    const cell = (label, ...content) => h("td", { dataset: { label } }, h("div", { class: "cell" }, ...content));
    return h(
      "tr",
      { dataset: { job: job.uuid, status: job.status } },
      cell(
        "Source file",
        h("span", { class: "file-name", title: `Job ${job.uuid}` }, name),
        job.register ? h("span", { class: "tag" }, "register") : null,
        job.dryRun ? h("span", { class: "tag", title: "Validated only: nothing was changed" }, "dry run") : null,
        extract ? h("span", { class: "tag" }, "extract") : null,
        extract && job.includeParticipateInfo ? h("span", { class: "tag" }, "access codes") : null,
        job.type === REVERT ? h("span", { class: "tag", title: `Reverts job ${job.revertOf}` }, "revert") : null,
        warnings.length ? h("div", { class: "muted small-text" }, `${warnings.length} warning${warnings.length === 1 ? "" : "s"}`) : null,
      ),
      cell("Site", job.siteOid),
      cell("Status", ...status),
      cell("Progress", h("div", { class: "progress" }, progressBar(job), h("div", { class: "counts" }, job.status === "IN_QUEUE" ? "Waiting for a worker" : countsText(job)))),
      cell("Submitted by", h("div", {}, job.createdBy), h("div", { class: "muted small-text" }, formatTime(job.dateCreated))),
      cell("Started", formatTime(job.dateStarted)),
      cell("Completed", formatTime(job.dateCompleted)),
      cell("Actions", h("div", { class: "row-actions" }, actions)),
    );
  }

  async fetchFile(path, fallback) {
    try {
      const name = await download(path, fallback);
      notice(this.message, `Downloaded ${name}.`, "success");
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) notice(this.message, errorNode(error), "error");
    }
  }

  async cancel(job, btn) {
    btn.disabled = true;
    try {
      const answer = await api(jobPath(job.uuid, "/cancel"), { method: "POST" });
      if (ACTIVE.has(answer.status)) this.stopping = job.uuid;
      const words = ACTIVE.has(answer.status) ? `Cancelling ${job.sourceFileName}: it stops after the batch it is working on.` : `Cancelled ${job.sourceFileName}.`;
      notice(this.message, words, "info");
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) notice(this.message, errorNode(error), "error");
    }
    this.reload();
  }

  async revert(job, btn) {
    if (!window.confirm(revertQuestion(job))) return;
    btn.disabled = true;
    try {
      await api(jobPath(job.uuid, "/revert"), { method: "POST" });
      notice(this.message, `Reverting ${job.sourceFileName}: a revert job is queued; its log shows each participant.`, "success");
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) notice(this.message, errorNode(error), "error");
    }
    this.reload();
  }

  async remove(job) {
    const question = job.type === EXTRACT
      ? `Delete the extract ${job.sourceFileName}? Its file is removed; participants stay as they are.`
      : `Delete the job for ${job.sourceFileName}? Its log and its stored upload are removed; participants stay as they are.`;
    if (!window.confirm(question)) return;
    try {
      await api(jobPath(job.uuid), { method: "DELETE" });
      notice(this.message, `Deleted the job for ${job.sourceFileName}.`, "success");
      this.onDeleted(job.uuid);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) notice(this.message, errorNode(error), "error");
    }
    this.reload();
  }
}
