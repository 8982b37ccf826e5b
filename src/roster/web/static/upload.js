// The upload form: a CSV or .xlsx file (chosen or dropped anywhere on the page), the register and
// validate-only flags, the bulk endpoint. The server decides every check; the page only explains its answers.

import { ApiError, P, seg, upload } from "./api.js";
import { $, errorNode, formatBytes, h, notice } from "./dom.js";

export class UploadForm {
  constructor({ onUploaded }) {
    this.onUploaded = onUploaded;
    this.form = $("upload-form");
    this.file = $("file");
    this.register = $("register");
    this.registerHint = $("register-hint");
    this.dryRun = $("dry-run");
    this.button = $("upload-button");
    this.progress = $("upload-progress");
    this.message = $("upload-message");
    this.overlay = $("drop-overlay");
    this.target = null; // {study, site, participateActive, canUpload}
    this.busy = false;
    this.dragDepth = 0;

    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.file.addEventListener("change", () => {
      const file = this.file.files[0];
      notice(this.message, file ? `Selected ${file.name} (${formatBytes(file.size)}).` : "");
    });
    this.wireDragAndDrop();
  }

  /** target: {study, site, participateActive, canUpload} or null when nothing is selected. */
  setTarget(target) {
    this.target = target;
    const participate = Boolean(target && target.participateActive);
    this.register.disabled = !participate;
    if (!participate) this.register.checked = false;
    this.registerHint.hidden = participate || !target;
    this.refreshButton();
  }

  reset() {
    this.form.reset();
    notice(this.message, "");
    this.setTarget(null);
  }

  refreshButton() {
    const allowed = Boolean(this.target && this.target.canUpload);
    this.button.disabled = this.busy || !allowed;
    this.file.disabled = !allowed;
  }

  async submit() {
    if (!this.target || !this.target.canUpload || this.busy) return;
    const file = this.file.files[0];
    if (!file) {
      notice(this.message, "Choose a CSV or Excel file first.", "error");
      this.file.focus();
      return;
    }
    const { study, site } = this.target;
    const register = this.register.checked && !this.register.disabled ? "y" : "n";
    const path = `${P}/clinicaldata/studies/${seg(study)}/sites/${seg(site)}/participants/bulk?register=${register}&dryRun=${this.dryRun.checked ? "y" : "n"}`;
    const body = new FormData();
    body.append("file", file, file.name);

    this.busy = true;
    this.refreshButton();
    this.progress.value = 0;
    this.progress.hidden = false;
    notice(this.message, `Uploading ${file.name}…`);
    try {
      const answer = await upload(path, body, (fraction) => {
        this.progress.value = fraction;
      });
      notice(this.message, h("span", {}, `Uploaded ${file.name} to ${site} as job `, h("code", {}, answer.jobUuid), "."), "success");
      this.file.value = "";
      this.onUploaded(answer);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) {
        notice(this.message, h("span", {}, `${file.name} was not accepted: `, errorNode(error)), "error");
      }
    } finally {
      this.busy = false;
      this.progress.hidden = true;
      this.refreshButton();
    }
  }

  /** Use a dropped file as if it had been chosen; uploading stays one deliberate click away. */
  select(files) {
    if (!this.target || !this.target.canUpload) {
      notice(this.message, "Choose a study and a site where you may upload before dropping a file.", "error");
      return;
    }
    const file = files[0];
    const chosen = new DataTransfer();
    chosen.items.add(file);
    this.file.files = chosen.files;
    const extra = files.length > 1 ? ` Only one file is uploaded at a time; the other ${files.length - 1} were left out.` : "";
    notice(this.message, `Selected ${file.name} (${formatBytes(file.size)}). Press Upload to send it to ${this.target.site}.${extra}`);
    this.button.focus();
  }

  wireDragAndDrop() {
    const carriesFiles = (event) => Boolean(event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files"));
    const signedIn = () => !$("app").hidden;
    document.addEventListener("dragenter", (event) => {
      if (!carriesFiles(event) || !signedIn()) return;
      event.preventDefault();
      this.dragDepth += 1;
      this.overlay.hidden = false;
    });
    document.addEventListener("dragover", (event) => {
      if (!carriesFiles(event)) return;
      // Prevented even when signed out, so that a stray drop cannot make the browser open the file.
      event.preventDefault();
      event.dataTransfer.dropEffect = signedIn() && this.target && this.target.canUpload ? "copy" : "none";
    });
    document.addEventListener("dragleave", (event) => {
      if (!carriesFiles(event)) return;
      this.dragDepth = Math.max(0, this.dragDepth - 1);
      if (this.dragDepth === 0) this.overlay.hidden = true;
    });
    document.addEventListener("drop", (event) => {
      if (!carriesFiles(event)) return;
      // Always prevent the default: a file dropped on the page must never navigate away from it.
      event.preventDefault();
      this.dragDepth = 0;
      this.overlay.hidden = true;
      if (!signedIn() || !event.dataTransfer.files.length) return;
      this.select(event.dataTransfer.files);
    });
  }
}
