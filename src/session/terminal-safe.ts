// Text from a build (a hostile Dockerfile's `RUN echo`) or an engine message reaches users'
// terminals in progress lines and errors: escape sequences could retitle the window, move the
// cursor over what the user reads, or worse on old terminals. Only printable text gets through.

/* eslint-disable no-control-regex -- matching control characters is the point here */
// CSI (ESC [ … final), OSC (ESC ] … BEL or ST), then any other ESC sequence (ESC c, ESC ( B…).
const ESCAPES = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[ -/]*[0-~]?/g;
// C0 controls but tab and newline, DEL, and the C1 controls (8-bit CSI is U+009B).
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
/* eslint-enable no-control-regex */

/** The text with escape sequences and control characters removed; newlines kept. */
export function terminalSafe(text: string): string {
  return text.replace(ESCAPES, '').replace(CONTROLS, '');
}

/** One line for a progress display: as terminalSafe, and newlines become spaces. */
export function terminalSafeLine(text: string): string {
  return terminalSafe(text).replace(/\n/g, ' ');
}
