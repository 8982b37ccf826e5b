// One job's bulk-actions log: a row per data row of the file, filterable by outcome, paginated.

import { ApiError, api, download } from "./api.js";
import { $, errorNode, h, notice, num, pagerState } from "./dom.js";
import { ACTIVE, countsText, fileStem, jobError, jobPath, statusBadge, warningText } from "./jobs.js";

const POLL_MS = 1500;
const OUTCOME_LABELS = { created: "Created", updated: "Updated", unchanged: "Unchanged", failed: "Failed", deleted: "Deleted", restored: "Restored" };

export class LogView {
  constructor() {
    this.section = $("log");
    this.title = $("log-title");
    this.summary = $("log-summary");
    this.warnings = $("log-warnings");
    this.body = $("log-body");
    this.message = $("log-message");
    this.empty = $("log-empty");
    this.outcome = $("log-outcome");
    this.pageSize = $("log-page-size");
    this.pageLabel = $("log-page");
    this.prev = $("log-prev");
    this.next = $("log-next");
    this.job = null;
    this.page = 1;
    this.pages = 1;
    this.timer = null;
    this.generation = 0;
    this.returnFocus = null;

    this.outcome.addEventListener("change", () => this.goTo(1));
    this.pageSize.addEventListener("change", () => this.goTo(1));
    this.prev.addEventListener("click", () => this.goTo(this.page - 1));
    this.next.addEventListener("click", () => this.goTo(this.page + 1));
    $("log-close").addEventListener("click", () => this.close(true));
    $("log-download").addEventListener("click", () => this.fetchFile("/downloadFile", "-log.csv"));
    $("log-failed").addEventListener("click", () => this.fetchFile("/failedRows", "-failed-rows.csv"));
    this.section.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.close(true);
    });
  }

  /** Opens the log of `job`; `returnFocus` gets the focus back when the log is closed. */
  open(job, returnFocus = null) {
    this.job = job;
    this.returnFocus = returnFocus;
    this.page = 1;
    this.outcome.value = "";
    this.body.replaceChildren();
    this.summary.replaceChildren();
    notice(this.message, "");
    this.title.textContent = `Log of ${job.sourceFileName}`;
    this.section.hidden = false;
    this.load();
    this.title.focus();
    this.section.scrollIntoView({ block: "start", behavior: "smooth" });
  }

  /** Hides the log; `restoreFocus` (a user's Close or Escape) puts the focus back on the View button. */
  close(restoreFocus = false) {
    if (this.section.hidden) return;
    this.stop();
    const uuid = this.job && this.job.uuid;
    this.job = null;
    this.section.hidden = true;
    this.body.replaceChildren();
    // Back to the View button that opened the log (or its successor, if a poll re-drew the row).
    let target = this.returnFocus && this.returnFocus.isConnected ? this.returnFocus : null;
    if (!target && uuid) target = document.querySelector(`#jobs-body tr[data-job="${CSS.escape(uuid)}"] [data-action="view"]`);
    if (target && restoreFocus) target.focus();
    this.returnFocus = null;
  }

  /** The job was deleted elsewhere on the page. */
  forget(uuid) {
    if (this.job && this.job.uuid === uuid) this.close();
  }

  stop() {
    this.generation += 1;
    clearTimeout(this.timer);
    this.timer = null;
  }

  goTo(page) {
    this.page = Math.max(1, Math.min(page, this.pages));
    this.load();
  }

  async load() {
    if (!this.job) return;
    this.stop();
    const generation = this.generation;
    const outcome = this.outcome.value;
    const size = Number(this.pageSize.value) || 100;
    const query = `?page=${this.page}&pageSize=${size}${outcome ? `&outcome=${encodeURIComponent(outcome)}` : ""}`;
    let job;
    let log;
    try {
      [job, log] = await Promise.all([api(jobPath(this.job.uuid)), api(jobPath(this.job.uuid, `/log${query}`))]);
    } catch (error) {
      if (generation !== this.generation) return;
      if (!(error instanceof ApiError && error.status === 401)) notice(this.message, errorNode(error), "error");
      return;
    }
    if (generation !== this.generation) return;
    if (this.message.classList.contains("error")) notice(this.message, "");
    this.job = job;
    this.pages = Math.max(1, Math.ceil(log.total / log.pageSize));
    if (log.items.length === 0 && this.page > 1 && this.page > this.pages) {
      this.goTo(this.pages);
      return;
    }
    this.renderSummary(job);
    this.renderRows(log);
    // A running job's log grows: follow it until the job ends.
    if (ACTIVE.has(job.status)) this.timer = setTimeout(() => generation === this.generation && this.load(), POLL_MS);
  }

  renderSummary(job) {
    const parts = [statusBadge(job), " ", job.siteOid, " · ", countsText(job)];
    if (job.error) parts.push(jobError(job));
    this.summary.replaceChildren(...parts.map((p) => (p instanceof Node ? p : document.createTextNode(p))));
    const warnings = Array.isArray(job.warnings) ? job.warnings : [];
    this.warnings.replaceChildren(...warnings.map((w) => h("li", {}, warningText(w))));
    this.warnings.hidden = warnings.length === 0;
    $("log-failed").disabled = !((job.counts || {}).failed > 0);
  }

  renderRows(log) {
    this.body.replaceChildren(...log.items.map((entry) => this.row(entry)));
    this.empty.hidden = log.items.length > 0;
    const first = log.total === 0 ? 0 : (this.page - 1) * log.pageSize + 1;
    const last = Math.min(log.total, this.page * log.pageSize);
    const what = this.outcome.value ? `${OUTCOME_LABELS[this.outcome.value].toLowerCase()} rows` : "rows";
    this.pageLabel.textContent = `Page ${this.page} of ${this.pages} · ${what} ${num(first)}–${num(last)} of ${num(log.total)}`;
    pagerState(this.prev, this.next, this.page, this.pages);
  }

  row(entry) {
    const errors = Array.isArray(entry.errors) ? entry.errors : [];
    const cell = (label, content, cls) => h("td", { dataset: { label }, class: cls }, h("div", { class: "cell" }, content));
    return h(
      "tr",
      { dataset: { row: entry.row, outcome: entry.outcome } },
      cell("Row", num(entry.row), "num"),
      cell("Line", num(entry.line), "num"),
      cell("Participant ID", entry.participantId ?? "", "participant-id"),
      cell("Participant OID", entry.participantOid ?? ""),
      cell("Outcome", h("span", { class: "badge", dataset: { outcome: entry.outcome } }, OUTCOME_LABELS[entry.outcome] || entry.outcome)),
      cell("Participate status", entry.participateStatus ?? ""),
      cell(
        "Errors",
        errors.length
          ? h(
              "ul",
              { class: "row-errors" },
              errors.map((e) =>
                h("li", {}, h("code", {}, e.code), " ", e.column ? h("span", { class: "column" }, e.column) : null, e.column ? ": " : "", e.message || ""),
              ),
            )
          : "",
      ),
    );
  }

  async fetchFile(suffix, fallbackSuffix) {
    if (!this.job) return;
    try {
      const name = await download(jobPath(this.job.uuid, suffix), `${fileStem(this.job.sourceFileName)}${fallbackSuffix}`);
      notice(this.message, `Downloaded ${name}.`, "success");
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) notice(this.message, errorNode(error), "error");
    }
  }
}
