// The EC2 Query protocol's response side: `<ActionResponse xmlns=...><requestId>` and the result's
// fields in EC2's lowerCamel names, lists as `<nameSet><item>...</item></nameSet>`; errors as
// `<Response><Errors><Error><Code>C</Code><Message>M</Message></Error></Errors><RequestID>`.

export const EC2_XMLNS = 'http://ec2.amazonaws.com/doc/2016-11-15/';

export type XmlValue = string | number | boolean | undefined | XmlValue[] | { [k: string]: XmlValue };

export function escapeXml(s: string): string {
  return s.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] ?? c,
  );
}

/** Fields in order; arrays become `<item>` lists; undefined fields are left out. */
export function renderXml(fields: { [k: string]: XmlValue }): string {
  let out = '';
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out += `<${name}>${renderValue(value)}</${name}>`;
  }
  return out;
}

function renderValue(value: XmlValue): string {
  if (Array.isArray(value)) return value.map((v) => `<item>${renderValue(v)}</item>`).join('');
  if (typeof value === 'object' && value !== null) return renderXml(value);
  return escapeXml(String(value));
}

export function responseXml(action: string, requestId: string, fields: { [k: string]: XmlValue }) {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${EC2_XMLNS}">` +
    `<requestId>${requestId}</requestId>${renderXml(fields)}</${action}Response>`
  );
}

export function errorXml(code: string, message: string, requestId: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${escapeXml(code)}</Code>` +
    `<Message>${escapeXml(message)}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`
  );
}
