// Defaults of the daemons whose config files knockgate reads. A knockd.conf or access.conf means
// what it meant to knockd or fwknopd, so their own defaults apply to it (not knockgate's, which are
// in api/limits.ts and apply to knockgate YAML).

/** jvinet/knock src/knockd.c: SEQ_TIMEOUT, CMD_TIMEOUT. */
export const KNOCKD_DEFAULTS = {
  seqTimeoutSeconds: 25,
  cmdTimeoutSeconds: 10,
} as const;

/** mrash/fwknop server/fwknopd_common.h and fwknopd.conf. */
export const FWKNOPD_DEFAULTS = {
  /** DEF_FW_ACCESS_TIMEOUT; FW_ACCESS_TIMEOUT < 1 also means this. */
  fwAccessTimeoutSeconds: 30,
  /** DEF_MAX_FW_TIMEOUT: cap on a client's --fw-timeout. */
  maxFwTimeoutSeconds: 300,
  /** PCAP_FILTER default "udp port 62201". */
  spaPort: '62201/udp',
  maxSpaPacketAgeSeconds: 120,
} as const;

/**
 * What a door opens when its config does not say and its command cannot be read (a knockd door
 * running a script, an access.conf stanza without OPEN_PORTS): SSH, the service these daemons
 * almost always guard. The import says so in a warning, and these ports are not protected by
 * default (see resolveSettings), so nothing that was reachable before becomes blocked.
 */
export const ASSUMED_GRANT_PORTS = ['22/tcp'] as const;

/** Largest config file (or included file) read; anything bigger is refused. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Deepest %include nesting in an access.conf. */
export const MAX_INCLUDE_DEPTH = 8;
