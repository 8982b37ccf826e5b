// DOM building without HTML strings: everything from a file or the database becomes a text node
// (append/textContent), so `<img src=x onerror=alert(1)>` as a participant ID shows as those characters.

/**
 * h("td", {class: "num", dataset: {label: "Row"}}, 12) → <td class="num" data-label="Row">12</td>
 * Attributes are set with setAttribute (never `style`, never HTML); children are nodes or text.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el;
}

export function clear(el) {
  el.replaceChildren();
}

/** Shows `message` (text or nodes) in a notice element, or hides it when message is empty. */
export function notice(el, message, kind = "info") {
  el.replaceChildren();
  el.classList.remove("info", "error", "success");
  if (message === null || message === undefined || message === "") {
    el.hidden = true;
    return;
  }
  el.classList.add(kind);
  append(el, [message]);
  el.hidden = false;
}

/** An API error in plain words next to its code: "The file is not UTF-8 text. errorCode.invalidFileEncoding". */
export function errorNode(error) {
  const detail = error && error.detail ? error.detail : String(error && error.message ? error.message : error);
  const code = error && error.code && error.code !== "network" ? error.code : null;
  // The server's detail already names what is wrong (the column, the limit); params stay machine-readable.
  const parts = [h("span", { class: "error-detail" }, detail)];
  if (code) parts.push(" ", h("code", { class: "error-code" }, code));
  return h("span", {}, parts);
}

export function formatTime(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return h("span", {}, iso);
  // Local time as YYYY-MM-DD HH:MM:SS (short, unambiguous in every locale); UTC in the tooltip.
  const pad = (n) => String(n).padStart(2, "0");
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  const clock = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  // Two unbreakable halves: a narrow column wraps between date and time, never inside either.
  return h("time", { datetime: iso, title: `${iso} (UTC)` }, h("span", { class: "nowrap" }, day), " ", h("span", { class: "nowrap" }, clock));
}

export function formatBytes(size) {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
  return `${(size / (1024 * 1024)).toFixed(1)} MiB`;
}

const numberFormat = new Intl.NumberFormat();
export function num(value) {
  return typeof value === "number" ? numberFormat.format(value) : "—";
}

/** Enables and shows a Previous/Next pager for `page` of `pages`. */
export function pagerState(prev, next, page, pages) {
  const focused = [prev, next].find((b) => b === document.activeElement);
  prev.disabled = page <= 1;
  next.disabled = page >= pages;
  prev.hidden = next.hidden = pages <= 1;
  // Keyboard users stay in the pager when the button they pressed becomes disabled (last page).
  if (focused && focused.disabled) {
    const other = focused === next ? prev : next;
    if (!other.disabled && !other.hidden) other.focus();
  }
}
