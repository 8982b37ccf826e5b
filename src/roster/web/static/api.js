// The page's only way to Roster: the same public API any client calls, with the bearer token
// from the token endpoint. The token lives in sessionStorage, so it is gone when the tab closes.

export const P = "/pages/auth/api";
const TOKEN_KEY = "roster.token";
const EXPIRES_KEY = "roster.tokenExpiresAt";
/** The API's code for a missing or refused token (roster.codes.UNAUTHORIZED); the page uses it when it has none. */
const UNAUTHORIZED = "errorCode.unauthorized";

export class ApiError extends Error {
  constructor(status, code, detail, params = {}) {
    super(detail || code);
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.params = params;
  }
}

export const auth = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  /** Milliseconds since the epoch when the token stops working, or null when unknown. */
  get expiresAt() {
    const value = Number(sessionStorage.getItem(EXPIRES_KEY));
    return Number.isFinite(value) && value > 0 ? value : null;
  },
  save(token, expiresInSeconds) {
    sessionStorage.setItem(TOKEN_KEY, token);
    if (Number.isFinite(expiresInSeconds)) {
      sessionStorage.setItem(EXPIRES_KEY, String(Date.now() + expiresInSeconds * 1000));
    } else {
      sessionStorage.removeItem(EXPIRES_KEY);
    }
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(EXPIRES_KEY);
  },
};

let unauthorizedHandler = () => {};

/** Called (once per lost session) when the API answers 401: the token expired or was revoked. */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

function lostSession() {
  const hadToken = auth.token !== null;
  auth.clear();
  if (hadToken) unauthorizedHandler();
}

/** Path segments such as OIDs may hold characters that need escaping, e.g. `S_JU0(TEST)` or `/`. */
export function seg(value) {
  return encodeURIComponent(value);
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's error page, say): fall back to the HTTP status.
  }
  const code = body && typeof body.message === "string" ? body.message : `HTTP ${response.status}`;
  const detail = body && typeof body.detail === "string" ? body.detail : response.statusText || "The request failed.";
  const params = body && typeof body.params === "object" && body.params !== null ? body.params : {};
  return new ApiError(response.status, code, detail, params);
}

const NETWORK_ERROR = () => new ApiError(0, "network", "Roster could not be reached. Check the connection and try again.");

export async function signIn(username, password) {
  let response;
  try {
    response = await fetch("/user-service/api/oauth/token", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ username, password }),
    });
  } catch {
    throw NETWORK_ERROR();
  }
  if (!response.ok) throw await errorFrom(response);
  const body = await response.json();
  auth.save(body.access_token, Number(body.expires_in));
}

/**
 * Calls the API with the bearer token. Answers parsed JSON (null for 204), or the Response itself
 * with `raw: true` (downloads). Throws ApiError; a 401 also ends the session.
 */
export async function api(path, { method = "GET", body, headers = {}, raw = false } = {}) {
  const token = auth.token;
  if (!token) {
    lostSession();
    throw new ApiError(401, UNAUTHORIZED, "Please sign in.");
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      body,
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json", ...headers },
      cache: "no-store",
    });
  } catch {
    throw NETWORK_ERROR();
  }
  if (response.status === 401) {
    const error = await errorFrom(response);
    lostSession();
    throw error;
  }
  if (!response.ok) throw await errorFrom(response);
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

/**
 * Uploads a multipart form with XMLHttpRequest rather than fetch: only XHR reports upload
 * progress, which matters for files of many megabytes.
 */
export function upload(path, formData, onProgress) {
  return new Promise((resolve, reject) => {
    const token = auth.token;
    if (!token) {
      lostSession();
      reject(new ApiError(401, UNAUTHORIZED, "Please sign in."));
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "text";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("error", () => reject(NETWORK_ERROR()));
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300 && body) {
        resolve(body);
        return;
      }
      const code = body && typeof body.message === "string" ? body.message : `HTTP ${xhr.status}`;
      const detail = body && typeof body.detail === "string" ? body.detail : xhr.statusText || "The upload failed.";
      const error = new ApiError(xhr.status, code, detail, (body && body.params) || {});
      if (xhr.status === 401) lostSession();
      reject(error);
    });
    xhr.send(formData);
  });
}

/** Fetches a file with the bearer token and hands it to the browser as a download. */
export async function download(path, fallbackName) {
  const response = await api(path, { raw: true, headers: { Accept: "text/csv, */*" } });
  const blob = await response.blob();
  const name = filenameFrom(response.headers.get("Content-Disposition")) || fallbackName;
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // Revoke later: the download may still be reading the blob when click() returns.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return name;
}

export function filenameFrom(disposition) {
  if (!disposition) return null;
  const extended = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(disposition);
  if (extended) {
    try {
      return sanitizeFilename(decodeURIComponent(extended[1].trim()));
    } catch {
      // Malformed percent-encoding: try the plain parameter.
    }
  }
  const plain = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]+))/.exec(disposition);
  if (!plain) return null;
  return sanitizeFilename((plain[1] ?? plain[2]).replace(/\\(.)/g, "$1").trim());
}

function sanitizeFilename(name) {
  // The browser sanitises too; this keeps path separators and control characters out regardless.
  const cleaned = name.replace(/[\\/\u0000-\u001f\u007f]/g, "_").trim();
  return cleaned || null;
}
