// A temp directory laid out like a device's root, and a CommandRunner that records every command
// and applies shadow's and BusyBox's account tools to that directory's files the way the real tools
// would (only the options skiff-core uses). It lets the users module run end to end without
// touching this machine's accounts; the integration tests run the real tools in a container.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { CommandResult, CommandRunner, RunOptions } from '../../../src/users/command-runner.js';

export interface RecordedCommand {
  /** The tool's base name, e.g. `useradd`. */
  tool: string;
  file: string;
  args: string[];
  stdin: string | undefined;
}

export const ME = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

export interface FakeRoot {
  root: string;
  read(path: string): Promise<string>;
  write(path: string, content: string): Promise<void>;
  cleanup(): Promise<void>;
}

const BASE_PASSWD = 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n';
const BASE_GROUP = 'root:x:0:\ndaemon:x:1:\n';
const BASE_SHADOW = 'root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n';

export async function createFakeRoot(files: Record<string, string> = {}): Promise<FakeRoot> {
  const root = await mkdtemp(join(tmpdir(), 'skiff-users-'));
  const fake: FakeRoot = {
    root,
    read: (path) => readFile(join(root, path), 'utf8'),
    async write(path, content) {
      await mkdir(join(root, path, '..'), { recursive: true });
      await writeFile(join(root, path), content);
    },
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
  const defaults: Record<string, string> = {
    'etc/passwd': BASE_PASSWD,
    'etc/group': BASE_GROUP,
    'etc/shadow': BASE_SHADOW,
    'etc/shells': '/bin/sh\n/bin/bash\n',
  };
  for (const [path, content] of Object.entries({ ...defaults, ...files })) await fake.write(path, content);
  await mkdir(join(root, 'home'), { recursive: true });
  return fake;
}

export const SHADOW_PATHS = {
  useradd: '/usr/sbin/useradd',
  usermod: '/usr/sbin/usermod',
  groupadd: '/usr/sbin/groupadd',
  chpasswd: '/usr/sbin/chpasswd',
  passwd: '/usr/bin/passwd',
  gpasswd: '/usr/bin/gpasswd',
};

export const BUSYBOX_PATHS = {
  adduser: '/bin/adduser',
  addgroup: '/bin/addgroup',
  delgroup: '/bin/delgroup',
  chpasswd: '/bin/chpasswd',
  passwd: '/bin/passwd',
};

type Lines = string[][];

function parse(text: string): Lines {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split(':'));
}

function format(lines: Lines): string {
  return lines.map((f) => f.join(':')).join('\n') + '\n';
}

/** Fails the next command to `tool` with this result instead of applying it. */
export interface FakeRunner extends CommandRunner {
  calls: RecordedCommand[];
  failNext(tool: string, result: CommandResult): void;
}

export function createFakeRunner(fake: FakeRoot): FakeRunner {
  const failures = new Map<string, CommandResult>();
  const calls: RecordedCommand[] = [];

  async function edit(path: string, fn: (lines: Lines) => void): Promise<void> {
    const lines = parse(await fake.read(path).catch(() => ''));
    fn(lines);
    await fake.write(path, format(lines));
  }
  function nextId(lines: Lines, index: number): number {
    return Math.max(999, ...lines.map((f) => Number(f[index])).filter((n) => n < 60000)) + 1;
  }
  function positional(args: string[]): string[] {
    // Operands: arguments after `--`, or those not consumed as option values.
    const dd = args.indexOf('--');
    if (dd >= 0) return args.slice(dd + 1);
    const out: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (/^-[sdhgGu]$/.test(a)) i++;
      else if (!a.startsWith('-')) out.push(a);
    }
    return out;
  }
  function opt(args: string[], flag: string): string | undefined {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  }

  async function addUser(name: string, shell: string, home: string, group: string | undefined): Promise<void> {
    const passwd = parse(await fake.read('etc/passwd'));
    const groups = parse(await fake.read('etc/group'));
    const uid = nextId(passwd, 2);
    let gid: number;
    if (group === undefined) {
      gid = nextId(groups, 2);
      groups.push([name, 'x', String(gid), '']);
      await fake.write('etc/group', format(groups));
    } else {
      gid = Number(groups.find((g) => g[0] === group)![2]);
    }
    passwd.push([name, 'x', String(uid), String(gid), '', home, shell]);
    await fake.write('etc/passwd', format(passwd));
    await edit('etc/shadow', (l) => l.push([name, '!', '19000', '0', '99999', '7', '', '', '']));
    await mkdir(join(fake.root, home), { recursive: true });
  }

  // Like shadow's chpasswd: the shadow entry when there is one, else the passwd field.
  async function setHash(name: string, hash: string): Promise<void> {
    const shadow = parse(await fake.read('etc/shadow').catch(() => ''));
    const entry = shadow.find((f) => f[0] === name);
    if (entry) {
      entry[1] = hash;
      await fake.write('etc/shadow', format(shadow));
      return;
    }
    await edit('etc/passwd', (l) => {
      l.find((f) => f[0] === name)![1] = hash;
    });
  }

  async function apply(tool: string, args: string[], stdin: string | undefined): Promise<void> {
    const [operand, second] = positional(args);
    switch (tool) {
      case 'useradd':
        return addUser(operand!, opt(args, '-s')!, opt(args, '-d')!, opt(args, '-g'));
      case 'adduser':
        return addUser(operand!, opt(args, '-s')!, opt(args, '-h')!, opt(args, '-G'));
      case 'groupadd':
      case 'addgroup':
        return edit('etc/group', (l) => l.push([operand!, 'x', String(nextId(l, 2)), '']));
      case 'usermod': {
        const groups = parse(await fake.read('etc/group'));
        return edit('etc/passwd', (l) => {
          const u = l.find((f) => f[0] === operand)!;
          const s = opt(args, '-s');
          if (s !== undefined) u[6] = s;
          const g = opt(args, '-g');
          if (g !== undefined) u[3] = groups.find((f) => f[0] === g)![2]!;
        }).then(async () => {
          const list = opt(args, '-G');
          if (list === undefined) return;
          const keep = list.split(',').filter((x) => x !== '');
          await edit('etc/group', (l) => {
            for (const f of l) {
              const members = (f[3] ?? '').split(',').filter((m) => m !== '' && m !== operand);
              if (keep.includes(f[0]!)) members.push(operand!);
              f[3] = members.join(',');
            }
          });
        });
      }
      case 'gpasswd':
      case 'delgroup': {
        const [user, group] = tool === 'gpasswd' ? [opt(args, '-d')!, positional(args.slice(2))[0]!] : [operand!, second!];
        return edit('etc/group', (l) => {
          const f = l.find((g) => g[0] === group)!;
          f[3] = (f[3] ?? '')
            .split(',')
            .filter((m) => m !== '' && m !== user)
            .join(',');
        });
      }
      case 'chpasswd': {
        if (!args.includes('-e')) throw new Error('fake chpasswd only supports -e');
        const line = (stdin ?? '').replace(/\n$/, '');
        const colon = line.indexOf(':');
        const name = line.slice(0, colon);
        const hash = line.slice(colon + 1);
        return setHash(name, hash);
      }
      case 'passwd':
        if (args[0] !== '-d') throw new Error('fake passwd only supports -d');
        return setHash(args[1]!, '');
      default:
        throw new Error(`fake runner: unexpected tool ${tool}`);
    }
  }

  return {
    calls,
    failNext(tool, result) {
      failures.set(tool, result);
    },
    async run(file: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
      const tool = basename(file);
      calls.push({ tool, file, args: [...args], stdin: options.stdin });
      const failure = failures.get(tool);
      if (failure) {
        failures.delete(tool);
        return failure;
      }
      await apply(tool, [...args], options.stdin);
      return { exitCode: 0, stdout: '', stderr: '' };
    },
  };
}
