// What a LogSpool takes and reports: its constructor's options and its stats (lib/store/log_spool.ts).

export interface LogSpoolOptions {
  /** Called for each damaged record replay finds (the rest of its segment is skipped). Default: console.warn. */
  onCorrupt?: (file: string, error: Error) => void;
  /** Permission bits of new segment files (default 0o600: mail is private). */
  fileMode?: number;
  /** Bytes after which appends go to a new segment (default 64 MiB; 4096 to 2^31). */
  segmentBytes?: number;
  /** Bytes of recently stored messages kept in memory for load() (default 32 MiB; 0: none), so
   *  that delivering a message soon after its submit reads nothing back from the log. */
  cacheBytes?: number;
}

export interface LogSpoolStats {
  messages: number;
  segments: number;
  /** Bytes of all segments. */
  bytes: number;
  /** Bytes of the live messages' PUT records. */
  liveBytes: number;
  /** fdatasync calls of group commits. */
  syncs: number;
  /** Groups written. */
  groups: number;
  /** Records that need no sync (removals, retry states) written at once, outside any group. */
  direct: number;
  /** Segments deleted by compaction. */
  compactions: number;
  /** Windows of the log load() read (each serves the messages stored after the one asked for). */
  windowReads: number;
}
