'use strict';
// Header objects from what the addon renders. Core renders every header (node/src/headers.rs);
// the header function of an in-process or host-wide limiter returns only the values, joined by
// '\n', with the index of their *shape* (the list of header names, which a limiter's
// renderings repeat: a style and a decision's shape give one) in the shared array. Per shape,
// once, this module makes a constructor whose object literal has the names as fixed keys: a
// few nanoseconds per object, where setting computed keys from a split string costs about
// 200 (BENCHMARKS.md, round 6). No header logic is here: names and values are core's bytes.

/** `{ name: value, ... }` from core's `name\nvalue\nname\nvalue...` text. */
function parseHeaders(text) {
  const result = {};
  let from = 0;
  while (from < text.length) {
    const nameEnd = text.indexOf('\n', from);
    let valueEnd = text.indexOf('\n', nameEnd + 1);
    if (valueEnd < 0) valueEnd = text.length;
    result[text.slice(from, nameEnd)] = text.slice(nameEnd + 1, valueEnd);
    from = valueEnd + 1;
  }
  return result;
}

/**
 * The constructor of shape `names` (core's header names joined by '\n'): `(values) => object`,
 * `values` the header values joined by '\n', in the order of the names. The names are
 * printable ASCII without quotes' meaning inside a JSON string literal (JSON.stringify writes
 * each as a string literal key, never code); `__proto__`, which a literal would treat as the
 * prototype, is not a header core writes, and is refused.
 */
function shapeBuilder(names) {
  const keys = names.split('\n');
  if (keys.includes('__proto__')) throw new RangeError('headers: a header named __proto__');
  const last = keys.length - 1;
  const lines = ['let from = 0;', 'let to = 0;'];
  keys.forEach((key, index) => {
    if (index === last) {
      lines.push(`const v${index} = values.slice(from);`);
    } else {
      lines.push(`to = values.indexOf('\\n', from);`, `const v${index} = values.slice(from, to);`, 'from = to + 1;');
    }
  });
  const fields = keys.map((key, index) => `${JSON.stringify(key)}: v${index}`).join(', ');
  lines.push(`return { ${fields} };`);
  // eslint-disable-next-line no-new-func -- a literal of fixed keys per shape, made once
  return new Function('values', lines.join('\n'));
}

module.exports = { parseHeaders, shapeBuilder };
