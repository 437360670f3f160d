// Pure parsing and editing of the colon-separated account files (/etc/passwd, /etc/group,
// /etc/shadow, /etc/gshadow). Parsing is lenient (a malformed line is skipped, as getpwent does);
// edits change one field of one line and keep every other byte as it was.

export interface PasswdEntry {
  name: string;
  /** `x` when the hash lives in /etc/shadow. */
  password: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  /** Empty means /bin/sh to most programs. */
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  /** Supplementary members (the fourth field); primary members are found by gid in passwd. */
  members: string[];
}

export interface ShadowEntry {
  name: string;
  hash: string;
}

const UINT = /^\d+$/;

/** One /etc/passwd line, or undefined when it is not a well-formed entry. */
export function parsePasswdLine(line: string): PasswdEntry | undefined {
  const fields = line.replace(/\r$/, '').split(':');
  if (fields.length < 7) return undefined;
  const [name, password, uid, gid, gecos, home] = fields as [string, string, string, string, string, string];
  // The shell is the rest: a colon in it is unusual but keeps the line's meaning.
  const shell = fields.slice(6).join(':');
  if (name === '' || name.startsWith('+') || name.startsWith('-') || name.startsWith('#')) return undefined;
  if (!UINT.test(uid) || !UINT.test(gid)) return undefined;
  return { name, password, uid: Number(uid), gid: Number(gid), gecos, home, shell };
}

export function parsePasswd(content: string): PasswdEntry[] {
  return content.split('\n').flatMap((line) => parsePasswdLine(line) ?? []);
}

/** The entry for a login name, or for a numeric uid (`"1000"`); the first match wins. */
export function findPasswdEntry(content: string, nameOrUid: string): PasswdEntry | undefined {
  const entries = parsePasswd(content);
  return entries.find((e) => e.name === nameOrUid) ?? (UINT.test(nameOrUid) ? entries.find((e) => e.uid === Number(nameOrUid)) : undefined);
}

export function parseGroupLine(line: string): GroupEntry | undefined {
  const fields = line.replace(/\r$/, '').split(':');
  if (fields.length < 4) return undefined;
  const [name, , gid, members] = fields as [string, string, string, string];
  if (name === '' || name.startsWith('+') || name.startsWith('-') || name.startsWith('#')) return undefined;
  if (!UINT.test(gid)) return undefined;
  return { name, gid: Number(gid), members: splitMembers(members) };
}

export function parseGroup(content: string): GroupEntry[] {
  return content.split('\n').flatMap((line) => parseGroupLine(line) ?? []);
}

export function parseShadow(content: string): ShadowEntry[] {
  return content.split('\n').flatMap((line) => {
    const fields = line.replace(/\r$/, '').split(':');
    const [name, hash] = fields;
    if (fields.length < 2 || name === undefined || hash === undefined || name === '' || name.startsWith('#')) return [];
    return [{ name, hash }];
  });
}

function splitMembers(field: string): string[] {
  return field
    .split(',')
    .map((m) => m.trim())
    .filter((m) => m !== '');
}

/**
 * What a password hash allows. `locked` is a `!` prefix (`passwd -l`, and what useradd/adduser
 * write for a new account); `disabled` is `*` and similar (no password matches, the account is not
 * locked); `missing` is no hash at all (no shadow entry, or `x` left pointing at a missing one).
 */
export type HashState = 'usable' | 'empty' | 'locked' | 'disabled' | 'missing';

export function hashState(hash: string | undefined): HashState {
  if (hash === undefined || hash === 'x') return 'missing';
  if (hash === '') return 'empty';
  if (hash.startsWith('!')) return 'locked';
  if (hash.startsWith('*')) return 'disabled';
  // Anything else is a crypt(3) string (`$id$…` or 13-character DES) some password may match.
  return 'usable';
}

/**
 * The account's current password hash: its /etc/shadow entry when it has one, else the passwd
 * field (systems without shadow), else undefined.
 */
export function currentHash(passwd: PasswdEntry, shadow: ShadowEntry[] | undefined): string | undefined {
  const entry = shadow?.find((s) => s.name === passwd.name);
  if (entry) return entry.hash;
  return passwd.password === 'x' ? undefined : passwd.password;
}

/** Names of the groups listing `user` as a supplementary member. */
export function supplementaryGroups(groups: GroupEntry[], user: string): string[] {
  return groups.filter((g) => g.members.includes(user)).map((g) => g.name);
}

/**
 * `content` with field `index` (0-based) of the line whose first field is `name` replaced by
 * `value`; undefined when there is no such line. Only the first matching line changes.
 */
export function setField(content: string, name: string, index: number, value: string): string | undefined {
  if (value.includes(':') || value.includes('\n')) throw new Error(`account file field must not contain ":" or a newline`);
  let done = false;
  const lines = content.split('\n').map((line) => {
    if (done) return line;
    const fields = line.split(':');
    if (fields[0] !== name || fields.length <= index) return line;
    done = true;
    fields[index] = value;
    return fields.join(':');
  });
  return done ? lines.join('\n') : undefined;
}

/**
 * /etc/group or /etc/gshadow content (members are the fourth field of both) without `user` among
 * the members of `group`; undefined when nothing had to change.
 */
export function removeGroupMember(content: string, group: string, user: string): string | undefined {
  let changed = false;
  const lines = content.split('\n').map((line) => {
    const fields = line.split(':');
    if (fields[0] !== group || fields.length < 4) return line;
    const members = splitMembers(fields[3]!);
    if (!members.includes(user)) return line;
    changed = true;
    fields[3] = members.filter((m) => m !== user).join(',');
    return fields.join(':');
  });
  return changed ? lines.join('\n') : undefined;
}
