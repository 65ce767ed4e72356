// fwknopd.conf (given with --fwknopd-conf): what of it applies to knockgate's SPA policies.
//   PCAP_INTF              the capture interface (policy.spec.interface, settings.interfaces)
//   PCAP_FILTER            the SPA port: "udp port 62201", "udp dst port 40000", "tcp port 443"
//   ENABLE_UDP_SERVER Y + UDPSERV_PORT   the SPA port (udp) when fwknopd listened on a socket
//   MAX_SPA_PACKET_AGE     spa.maxPacketAgeSeconds (default 120)
//   ENABLE_SPA_PACKET_AGING N   not honoured, with a warning: knockgate always checks packet age
// Variables about fwknopd's own firewall chains, files, logging and capture tuning are known and
// have no knockgate counterpart: accepted silently. Settings that would make knockgate accept what
// it cannot check (SPA over HTTP, NAT) are refused. Anything else is an unknown variable: an error.

import { BOUNDS } from '../limits.js';
import { INTERFACE_NAME } from '../validate-fields.js';
import { ConfigError, shown, where } from './errors.js';
import { FWKNOPD_DEFAULTS } from './defaults.js';
import { fwknopLines, yes } from './fwknop-lines.js';

export interface FwknopdSettings {
  interface?: string;
  /** "62201/udp". */
  spaPort: string;
  maxPacketAgeSeconds: number;
  warnings: string[];
}

/** fwknopd.conf variables with no knockgate counterpart (mrash/fwknop server/cmd_opts.h config_map). */
const NO_COUNTERPART = new Set(
  `CONFIG_FILE OVERRIDE_CONFIG FIREWALL_TYPE PCAP_FILE ENABLE_PCAP_PROMISC PCAP_DISPATCH_COUNT PCAP_LOOP_SLEEP
  ENABLE_PCAP_ANY_DIRECTION EXIT_AT_INTF_DOWN MAX_SNIFF_BYTES ENABLE_DIGEST_PERSISTENCE RULES_CHECK_THRESHOLD
  CMD_EXEC_TIMEOUT ENABLE_TCP_SERVER TCPSERV_PORT UDPSERV_SELECT_TIMEOUT LOCALE SYSLOG_IDENTITY SYSLOG_FACILITY
  ENABLE_DESTINATION_RULE ENABLE_NAT_DNS ENABLE_RULE_PREPEND ENABLE_X_FORWARDED_FOR
  ENABLE_NFQ_CAPTURE NFQ_INTERFACE NFQ_PORT NFQ_TABLE NFQ_CHAIN NFQ_QUEUE_NUMBER NFQ_LOOP_SLEEP
  FLUSH_IPT_AT_INIT FLUSH_IPT_AT_EXIT IPT_INPUT_ACCESS IPT_OUTPUT_ACCESS IPT_FORWARD_ACCESS IPT_DNAT_ACCESS
  IPT_SNAT_ACCESS IPT_MASQUERADE_ACCESS ENABLE_IPT_COMMENT_CHECK ENABLE_IPT_OUTPUT
  FLUSH_FIREWD_AT_INIT FLUSH_FIREWD_AT_EXIT FIREWD_INPUT_ACCESS FIREWD_OUTPUT_ACCESS FIREWD_FORWARD_ACCESS
  FIREWD_DNAT_ACCESS FIREWD_SNAT_ACCESS FIREWD_MASQUERADE_ACCESS ENABLE_FIREWD_COMMENT_CHECK ENABLE_FIREWD_OUTPUT
  IPFW_START_RULE_NUM IPFW_MAX_RULES IPFW_ACTIVE_SET_NUM IPFW_EXPIRE_SET_NUM IPFW_EXPIRE_PURGE_INTERVAL
  IPFW_ADD_CHECK_STATE PF_ANCHOR_NAME PF_EXPIRE_INTERVAL FWKNOP_RUN_DIR FWKNOP_CONF_DIR ACCESS_FILE ACCESS_FOLDER
  FWKNOP_PID_FILE DIGEST_FILE DIGEST_DB_FILE GPG_HOME_DIR GPG_EXE SUDO_EXE FIREWALL_EXE VERBOSE
  ENABLE_EXTERNAL_CMDS EXTERNAL_CMD_OPEN EXTERNAL_CMD_CLOSE EXTERNAL_CMD_ALARM ENABLE_EXT_CMD_PREFIX EXT_CMD_PREFIX`.split(
    /\s+/,
  ),
);

/** NAT and forwarding: knockgate does no NAT, so these may only be off. */
const NAT_SWITCHES = new Set([
  'ENABLE_IPT_FORWARDING',
  'ENABLE_IPT_LOCAL_NAT',
  'ENABLE_IPT_SNAT',
  'ENABLE_FIREWD_FORWARDING',
  'ENABLE_FIREWD_LOCAL_NAT',
  'ENABLE_FIREWD_SNAT',
]);

export function parseFwknopdConf(file: string, text: string): FwknopdSettings {
  const out: FwknopdSettings = {
    spaPort: FWKNOPD_DEFAULTS.spaPort,
    maxPacketAgeSeconds: FWKNOPD_DEFAULTS.maxSpaPacketAgeSeconds,
    warnings: [],
  };
  let udpServer = false;
  let udpPort: string | undefined;
  for (const l of fwknopLines(text)) {
    const fail = (what: string): never => {
      throw new ConfigError(file, l.line, what);
    };
    const v = l.value;
    if (v === '') fail(`${l.name} has no value`);
    if (NAT_SWITCHES.has(l.name)) {
      if (yes(v)) fail(`${l.name} Y: knockgate does no NAT or forwarding`);
      continue;
    }
    if (NO_COUNTERPART.has(l.name) || l.name === 'SNAT_TRANSLATE_IP') continue;
    switch (l.name) {
      case 'PCAP_INTF':
        if (!INTERFACE_NAME.test(v)) fail(`PCAP_INTF "${shown(v)}" is not an interface name`);
        out.interface = v;
        break;
      case 'PCAP_FILTER':
        out.spaPort = portFromFilter(v, fail);
        break;
      case 'MAX_SPA_PACKET_AGE': {
        if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > BOUNDS.maxPacketAgeSeconds) {
          fail(`MAX_SPA_PACKET_AGE "${shown(v, true)}" must be 1 to ${BOUNDS.maxPacketAgeSeconds} seconds`);
        }
        out.maxPacketAgeSeconds = Number(v);
        break;
      }
      case 'ENABLE_SPA_PACKET_AGING':
        if (!yes(v)) {
          out.warnings.push(
            where(
              file,
              l.line,
              'ENABLE_SPA_PACKET_AGING N is not honoured: knockgate always refuses packets older than MAX_SPA_PACKET_AGE',
            ),
          );
        }
        break;
      case 'ENABLE_SPA_OVER_HTTP':
        if (yes(v)) fail('ENABLE_SPA_OVER_HTTP Y: knockgate reads SPA packets from UDP or TCP payloads only');
        break;
      case 'ENABLE_UDP_SERVER':
        udpServer = yes(v);
        break;
      case 'UDPSERV_PORT':
        if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 65535)
          fail(`UDPSERV_PORT "${shown(v, true)}" is not a port`);
        udpPort = `${Number(v)}/udp`;
        break;
      default:
        fail(`unknown variable ${l.name}`);
    }
  }
  // fwknopd's UDP server listens on UDPSERV_PORT (default 62201) instead of sniffing PCAP_FILTER.
  if (udpServer) out.spaPort = udpPort ?? FWKNOPD_DEFAULTS.spaPort;
  return out;
}

/** "udp port 62201", "udp dst port 62201", "port 62201" → "62201/udp". One port only. */
function portFromFilter(filter: string, fail: (what: string) => never): string {
  const m = /^(?:(udp|tcp)\s+)?(?:dst\s+)?port\s+(\d{1,5})$/i.exec(filter.trim().replace(/\s+/g, ' '));
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) {
    fail(
      `PCAP_FILTER "${shown(filter)}": knockgate needs one SPA port, written as "udp port N" or "tcp port N"`,
    );
  }
  return `${port}/${(m![1] ?? 'udp').toLowerCase()}`;
}
