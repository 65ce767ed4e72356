// Why an SPA packet is refused: a short machine-friendly reason and one human line each. The lines
// name what is wrong; none holds key material or packet contents.

export const SPA_REFUSALS = {
  'wrong-port': 'not addressed to the policy SPA port',
  'source-not-allowed': 'source address not in allowedSources',
  'not-spa': 'not SPA data (length or characters out of bounds)',
  'salted-prefix': 'starts with the base64 "Salted__" prefix (refused as fwknopd does)',
  'missing-hmac': 'no HMAC key configured and the policy does not allow packets without HMAC',
  'bad-hmac': 'HMAC does not match',
  'decrypt-failed': 'does not decrypt with the key',
  malformed: 'decrypted message is malformed',
  'bad-digest': 'message digest does not match',
  'command-refused': 'command messages are refused',
  'nat-refused': 'NAT access messages are refused (knockgate does no NAT)',
  stale: 'timestamp outside the maxPacketAgeSeconds window',
  'source-mismatch': 'allow IP in the packet is not its source address (requireSourceAddress)',
  'never-grant': 'allow IP is an address that is never granted',
  username: 'username is not the one the policy requires',
  'ports-not-allowed': 'requested ports are not a subset of the policy grant ports',
} as const;

export type SpaRefusalReason = keyof typeof SPA_REFUSALS;
