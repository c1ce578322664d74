/**
 * CPU priority that holds on a shared machine. With `kernel.sched_autogroup_enabled=1` (the default
 * on most distributions) the scheduler first shares the CPU evenly between *sessions* (autogroups)
 * and only then by niceness inside each; a `nice -n -10` process in a session of its own, or in the
 * test runner's session, gets no more CPU than any other busy session. So a raised priority is
 * applied in both places: the process's niceness, and — for a process that leads its own session
 * (spawned `detached`) — its autogroup's niceness (`/proc/PID/autogroup`). Inside a non-root cpu
 * cgroup (systemd services) autogroups do not apply and the niceness alone counts.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { setPriority } from "node:os";

/** The session id of a process (field 6 of /proc/PID/stat), or undefined. */
function sessionOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // the command name (field 2) may hold spaces and parentheses: fields follow the last ')'
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const sid = Number(rest[3]);
    return Number.isInteger(sid) ? sid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Raises `pid` to `niceness` (default -10): its own niceness, and its autogroup's when it leads its
 * session (never the caller's own session's group, which would raise everything else in it).
 * Returns what was applied; failures (no permission, no autogroups) leave the priority as it was.
 */
export function raisePriority(pid: number, niceness = -10): { nice: boolean; autogroup: boolean } {
  let nice = false;
  let autogroup = false;
  try {
    setPriority(pid, niceness);
    nice = true;
  } catch {
    // not permitted
  }
  if (sessionOf(pid) === pid) {
    try {
      writeFileSync(`/proc/${pid}/autogroup`, String(niceness));
      autogroup = true;
    } catch {
      // no autogroups (kernel option off) or not permitted
    }
  }
  return { nice, autogroup };
}

/**
 * Raises the calling process and its whole session (a benchmark and everything it spawns) to
 * `niceness`: its niceness, and its autogroup's (which the session shares).
 */
export function raiseOwnPriority(niceness: number): { nice: boolean; autogroup: boolean } {
  let nice = false;
  let autogroup = false;
  try {
    setPriority(0, niceness);
    nice = true;
  } catch {
    // not permitted
  }
  try {
    writeFileSync("/proc/self/autogroup", String(niceness));
    autogroup = true;
  } catch {
    // no autogroups or not permitted
  }
  return { nice, autogroup };
}
