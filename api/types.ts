// The knockgate API (group knockgate.io, version v1alpha1, all cluster-scoped).
//
// These types are the single source of truth: the CRD YAML in crds/ is checked against them by a
// test, the stores persist them, the sniffer creates them and the reconcilers read them.
// Field names and shapes follow DESIGN.md's "API" section.

export const GROUP = 'knockgate.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** "22/tcp", "62201/udp": a port and a protocol (see api/ports.ts for parsing and bounds). */
export type PortProto = string;

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
}

/** metav1.Condition. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

// ---------------------------------------------------------------------------------------------
// KnockPolicy: one door. Exactly one of knock or spa.

export interface KnockSpec {
  /** knockd `sequence`: ["26515/tcp", "8924/tcp", ...]. Exactly one of sequence / oneTimeSequences. */
  sequence?: PortProto[];
  /** knockd `one_time_sequences`: each sequence opens once, then is used up (claimed like an SPA packet). */
  oneTimeSequences?: PortProto[][];
  /** knockd `seq_timeout`, counted from the first knock. Default 15 (see api/limits.ts). */
  sequenceTimeoutSeconds?: number;
  /** knockd `tcpflags`: syn, ack, fin, rst, psh, urg, each optionally negated with "!". */
  tcpFlags?: string[];
}

export interface SecretRef {
  /** A Secret in the release namespace (never another namespace). */
  name: string;
}

export type HmacDigestType = 'md5' | 'sha1' | 'sha256' | 'sha384' | 'sha512' | 'sha3_256' | 'sha3_512';
export type EncryptionMode = 'cbc' | 'legacy';

export interface SpaSpec {
  /**
   * Secret with KEY_BASE64 (or KEY, a passphrase) and HMAC_KEY_BASE64 (or HMAC_KEY).
   * In standalone mode the keys come from the config file and this names them.
   */
  keySecretRef: SecretRef;
  /** Where SPA packets arrive, e.g. "62201/udp". */
  port: PortProto;
  /** fwknopd MAX_SPA_PACKET_AGE. Default 120. */
  maxPacketAgeSeconds?: number;
  /** fwknopd SOURCE: CIDRs a packet may come from. Default ["0.0.0.0/0", "::/0"]. */
  allowedSources?: string[];
  /** fwknopd REQUIRE_SOURCE_ADDRESS: the allow-IP in the packet must equal the packet's source. */
  requireSourceAddress?: boolean;
  /** fwknopd REQUIRE_USERNAME: "" = any. */
  requireUsername?: string;
  /** fwknopd HMAC_DIGEST_TYPE. Default sha256. */
  hmacDigestType?: HmacDigestType;
  /** fwknopd ENCRYPTION_MODE. Default cbc. */
  encryptionMode?: EncryptionMode;
  /** Accept packets that carry no HMAC. Off unless a policy explicitly says so (old access.conf files). */
  allowMissingHmac?: boolean;
}

export type NodeTargetMode = 'Local' | 'Selector' | 'None';

export interface AwsSecurityGroupRef {
  groupId: string;
  region: string;
}

export interface GrantTemplate {
  /** What is opened (fwknop OPEN_PORTS). An SPA request must be a subset. */
  ports: PortProto[];
  /** knockd cmd_timeout / fwknop FW_ACCESS_TIMEOUT. */
  durationSeconds: number;
  /** Cap on an SPA client timeout (-f). Default = durationSeconds. */
  maxDurationSeconds?: number;
  targets?: {
    node?: { mode: NodeTargetMode; nodeSelector?: Record<string, string> };
    awsSecurityGroups?: AwsSecurityGroupRef[];
  };
}

export interface KnockPolicySpec {
  knock?: KnockSpec;
  spa?: SpaSpec;
  grant: GrantTemplate;
  /** Which nodes' sniffers listen. */
  nodeSelector?: Record<string, string>;
  /** Capture interface; default: the node's default-route interface. */
  interface?: string;
}

export interface KnockPolicy {
  apiVersion: typeof API_VERSION;
  kind: 'KnockPolicy';
  metadata: ObjectMeta;
  spec: KnockPolicySpec;
  status?: { conditions?: Condition[]; observedGeneration?: number };
}

// ---------------------------------------------------------------------------------------------
// AccessGrant: one opened door for one source, until expiresAt.

export type GrantMethod = 'knock' | 'spa' | 'manual';
export type GrantPhase = 'Pending' | 'Active' | 'Expired' | 'Failed' | 'Revoked';

export interface AccessGrantSpec {
  /** One host: a.b.c.d/32 or an IPv6 /128. */
  source: string;
  ports: PortProto[];
  /** RFC 3339, UTC. */
  expiresAt: string;
  /** Absent for a manual grant. */
  policyRef?: { name: string };
  method: GrantMethod;
  /** The node (or standalone host) whose sniffer saw the knock or packet. */
  observedBy?: string;
  /** SPA username, when present. */
  user?: string;
  /** Resolved when the grant is made. */
  targets?: {
    nodes?: string[];
    awsSecurityGroups?: AwsSecurityGroupRef[];
  };
}

export type TargetState = 'Pending' | 'Applied' | 'Removed' | 'Failed';

export interface NodeStatus {
  state: TargetState;
  since: string;
  message?: string;
}

/**
 * A security group's state for one grant. CoveredByExistingRule: a rule knockgate does not own
 * already allows the source (access works; that rule is never revoked).
 */
export type SecurityGroupState = TargetState | 'CoveredByExistingRule';

export interface SecurityGroupStatus {
  state: SecurityGroupState;
  /** The rule id (sgr-...) of the grant's first port, once applied. */
  ruleId?: string;
  /** Every rule id, one per port, when the grant has more than one port. */
  ruleIds?: string[];
  since: string;
  /** Why it is not Applied (CamelCase: QuotaExceeded, GroupNotFound, Unauthorized, AuthFailure, ...). */
  reason?: string;
  message?: string;
}

export interface AccessGrantStatus {
  phase?: GrantPhase;
  /** A map so that each agent merge-patches its own key. */
  nodes?: Record<string, NodeStatus>;
  securityGroups?: Record<string, SecurityGroupStatus>;
  conditions?: Condition[];
  message?: string;
}

export interface AccessGrant {
  apiVersion: typeof API_VERSION;
  kind: 'AccessGrant';
  metadata: ObjectMeta;
  spec: AccessGrantSpec;
  status?: AccessGrantStatus;
}

// ---------------------------------------------------------------------------------------------
// ReplayClaim: one used SPA packet (or one used one-time knock sequence), cluster-wide.

export interface ReplayClaimSpec {
  /** packet timestamp + maxPacketAgeSeconds + allowed clock skew. */
  expiresAt: string;
  /** Which policy the packet or sequence was used for. */
  policyRef?: { name: string };
  /** The node that claimed it. */
  claimedBy?: string;
}

export interface ReplayClaim {
  apiVersion: typeof API_VERSION;
  kind: 'ReplayClaim';
  /** metadata.name is the lowercase hex digest of the exact packet text. */
  metadata: ObjectMeta;
  spec: ReplayClaimSpec;
}

export type KnockgateObject = KnockPolicy | AccessGrant | ReplayClaim;
