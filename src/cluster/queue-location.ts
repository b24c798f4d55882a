/**
 * A queue URL as runflow prints it (errors, `worker`'s first line, the commands it prints
 * back): without its password, which a Redis URL often carries. Apart from the queues'
 * backend so that commands printing it do not load BullMQ.
 */
export function describeQueueLocation(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return JSON.stringify(url.replace(/:[^:@/]*@/, ":***@"));
  }
}
