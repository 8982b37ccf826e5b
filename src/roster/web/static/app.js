// Entry point of the Bulk Actions Log page: sign-in, the study and site selectors, and wiring.

import { ApiError, P, api, auth, onUnauthorized, signIn } from "./api.js";
import { $, errorNode, h, notice } from "./dom.js";
import { ExtractForm } from "./extract.js";
import { JobsTable } from "./jobs.js";
import { LogView } from "./log.js";
import { UploadForm } from "./upload.js";

const EXPIRED = "Your session has expired or is no longer valid. Please sign in again.";
const STUDY_KEY = "roster.study";
const SITE_KEY = "roster.site";

const state = { me: null, expiryTimer: null };

const log = new LogView();
const jobs = new JobsTable({
  onView: (job, button) => log.open(job, button),
  onDeleted: (uuid) => log.forget(uuid),
});
const uploader = new UploadForm({
  onUploaded: () => {
    jobs.goTo(1);
  },
});
const extractor = new ExtractForm({ onQueued: () => jobs.goTo(1) });

// ---------------------------------------------------------------- sign-in and sign-out

function showSignIn(message = "", kind = "error") {
  clearTimeout(state.expiryTimer);
  state.me = null;
  jobs.reset();
  log.close();
  uploader.reset();
  extractor.reset();
  // Nothing from the previous session stays on screen.
  $("study").replaceChildren();
  $("site").replaceChildren();
  $("app").hidden = true;
  $("whoami").hidden = true;
  $("whoami-name").textContent = "";
  $("signin").hidden = false;
  $("password").value = "";
  notice($("signin-message"), message, kind);
  $("signin-button").disabled = false;
  $("username").focus();
}

function signOut() {
  auth.clear();
  showSignIn("You have signed out.", "info");
}

function expire() {
  auth.clear();
  showSignIn(EXPIRED);
}

function scheduleExpiry() {
  clearTimeout(state.expiryTimer);
  const at = auth.expiresAt;
  // setTimeout's limit is ~24.8 days; tokens live at most a week.
  if (at !== null) state.expiryTimer = setTimeout(expire, Math.max(0, at - Date.now()));
}

async function onSignIn(event) {
  event.preventDefault();
  const username = $("username").value.trim();
  const password = $("password").value;
  if (!username || !password) {
    notice($("signin-message"), "Enter your username and password.", "error");
    (username ? $("password") : $("username")).focus();
    return;
  }
  $("signin-button").disabled = true;
  notice($("signin-message"), "");
  try {
    await signIn(username, password);
  } catch (error) {
    $("signin-button").disabled = false;
    const words = error instanceof ApiError && error.status === 401 ? "Wrong username or password (or the account is disabled)." : null;
    notice($("signin-message"), words ? h("span", {}, words, " ", h("code", {}, error.code)) : errorNode(error), "error");
    $("password").select();
    $("password").focus();
    return;
  }
  $("password").value = "";
  await start();
}

async function start() {
  if (auth.expiresAt !== null && auth.expiresAt <= Date.now()) {
    expire();
    return;
  }
  let me;
  try {
    me = await api(`${P}/me`);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) {
      showSignIn("");
      notice($("signin-message"), errorNode(error), "error");
    }
    return;
  }
  state.me = me;
  scheduleExpiry();
  $("signin").hidden = true;
  notice($("signin-message"), "");
  $("whoami-name").textContent = me.displayName || me.username;
  $("whoami").hidden = false;
  $("app").hidden = false;
  fillStudies();
}

// ---------------------------------------------------------------- study and site selectors

function label(item) {
  return item.name && item.name !== item.oid ? `${item.name} (${item.oid})` : item.oid;
}

function currentStudy() {
  return state.me?.studies.find((s) => s.oid === $("study").value) || null;
}

function currentSite() {
  return currentStudy()?.sites.find((s) => s.oid === $("site").value) || null;
}

function fillStudies() {
  const studies = state.me.studies;
  const select = $("study");
  select.replaceChildren(...studies.map((s) => h("option", { value: s.oid }, label(s) + (s.status !== "available" ? " — locked" : ""))));
  $("no-studies").hidden = studies.length > 0;
  select.disabled = studies.length === 0;
  const remembered = sessionStorage.getItem(STUDY_KEY);
  if (studies.some((s) => s.oid === remembered)) select.value = remembered;
  fillSites();
}

function fillSites() {
  const study = currentStudy();
  const sites = study ? study.sites : [];
  const select = $("site");
  select.replaceChildren(
    ...sites.map((s) => {
      const notes = [s.status !== "available" ? "locked" : null, s.canWrite ? null : "view only"].filter(Boolean);
      return h("option", { value: s.oid }, label(s) + (notes.length ? ` — ${notes.join(", ")}` : ""));
    }),
  );
  select.disabled = sites.length === 0;
  const remembered = sessionStorage.getItem(SITE_KEY);
  if (sites.some((s) => s.oid === remembered)) select.value = remembered;
  else {
    // Prefer a site where the user may upload.
    const writable = sites.find((s) => s.canWrite);
    if (writable) select.value = writable.oid;
  }
  onSiteChange();
}

function onSiteChange() {
  const study = currentStudy();
  const site = currentSite();
  log.close();
  if (study) sessionStorage.setItem(STUDY_KEY, study.oid);
  if (site) sessionStorage.setItem(SITE_KEY, site.oid);

  let reason = "";
  if (study && !site) reason = "You have no site in this study.";
  else if (study && study.status !== "available") reason = "This study is locked: nothing can be uploaded to it.";
  else if (site && site.status !== "available") reason = "This site is locked: nothing can be uploaded to it.";
  else if (site && !site.canWrite) reason = "Your role at this site lets you view jobs but not upload participants.";
  const note = $("site-note");
  note.textContent = reason;
  note.hidden = !reason;

  uploader.setTarget(
    study && site
      ? { study: study.oid, site: site.oid, participateActive: study.participateActive, canUpload: !reason }
      : null,
  );
  $("upload-section").hidden = !study;
  // Reading needs any role at the site; only a locked study or site refuses an extract.
  const available = Boolean(study && site && study.status === "available" && site.status === "available");
  extractor.setTarget(study && site ? { study: study.oid, site: site.oid, available } : null);
  if (study && site) jobs.show(state.me, { study: study.oid, site: site.oid, allSites: $("all-sites").checked });
  else jobs.reset();
}

// ---------------------------------------------------------------- wiring

onUnauthorized(() => expire());
$("signin-form").addEventListener("submit", onSignIn);
$("sign-out").addEventListener("click", signOut);
$("study").addEventListener("change", () => {
  sessionStorage.removeItem(SITE_KEY);
  fillSites();
});
$("site").addEventListener("change", onSiteChange);
$("all-sites").addEventListener("change", () => {
  const study = currentStudy();
  const site = currentSite();
  if (study && site) jobs.show(state.me, { study: study.oid, site: site.oid, allSites: $("all-sites").checked });
});

if (auth.token) start();
else showSignIn();
