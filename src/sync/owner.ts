/**
 * Who this process is to the other processes sharing its store: the owner name on its leases, claims and
 * runs, and how it tells that another owner on the same machine is dead.
 */
import os from 'node:os';

/**
 * The machine: the host name (a pod's name on Kubernetes), or BRIDGE_INSTANCE_NAME where host names are not
 * unique across replicas (containers with a fixed hostname).
 */
const INSTANCE = process.env.BRIDGE_INSTANCE_NAME || os.hostname();

/** This process: '<instance>:<pid>'. */
export const PROCESS_OWNER = `${INSTANCE}:${process.pid}`;

/** An owner on this machine whose process is gone (killed, crashed) holds nothing; others are trusted. */
export function ownerIsDead(owner: string): boolean {
  const at = owner.lastIndexOf(':');
  if (owner.slice(0, at) !== INSTANCE) return false;
  const pid = Number(owner.slice(at + 1));
  if (!Number.isInteger(pid)) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
