// The "Extract participants" form: queues an extract job for the chosen site (SPEC §11.3). Any role at the
// site may ask; the server decides the columns when the job runs, and the file is downloaded from the jobs table.

import { ApiError, P, api, seg } from "./api.js";
import { $, errorNode, h, notice } from "./dom.js";

export class ExtractForm {
  constructor({ onQueued }) {
    this.onQueued = onQueued;
    this.section = $("extract-section");
    this.form = $("extract-form");
    this.codes = $("extract-codes");
    this.button = $("extract-button");
    this.message = $("extract-message");
    this.target = null; // {study, site, available}
    this.busy = false;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  /** target: {study, site, available} or null when nothing is selected. */
  setTarget(target) {
    this.target = target;
    this.section.hidden = !target;
    this.button.disabled = this.busy || !(target && target.available);
    notice(this.message, "");
  }

  reset() {
    this.form.reset();
    this.setTarget(null);
  }

  async submit() {
    if (!this.target || !this.target.available || this.busy) return;
    const { study, site } = this.target;
    const include = this.codes.checked ? "y" : "n";
    const path = `${P}/clinicaldata/studies/${seg(study)}/sites/${seg(site)}/participants/extractParticipantsInfo?includeParticipateInfo=${include}`;
    this.busy = true;
    this.button.disabled = true;
    try {
      const answer = await api(path, { method: "POST" });
      notice(this.message, h("span", {}, `Extracting the participants of ${site} as job `, h("code", {}, answer.jobUuid), ": download the file from the jobs below when it has completed."), "success");
      this.onQueued(answer);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) notice(this.message, errorNode(error), "error");
    } finally {
      this.busy = false;
      this.button.disabled = !(this.target && this.target.available);
    }
  }
}
