#!/usr/bin/python3
"""prom_check.py - a strict checker of the Prometheus text exposition
format, version 0.0.4, for the metrics test:

  prom_check.py FILE        (FILE "-": standard input)

Exit 0 and "ok: N families, M samples" when FILE is valid; exit 1 with
one line per problem ("line N: ...") otherwise.  Stricter than Prometheus
where our page promises more:
  - the text is UTF-8, ends with a newline, has no CR;
  - every sample's family has exactly one "# HELP" and one "# TYPE", both
    before its first sample; a family's lines are contiguous;
  - metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names
    [a-zA-Z_][a-zA-Z0-9_]* (not "__..."), no label twice, label values
    with only the escapes \\\\, \\" and \\n, HELP text with only \\\\ and \\n;
  - values parse as Go's ParseFloat would (also +Inf, -Inf, NaN), an
    optional integer timestamp;
  - no series twice;
  - counters end in _total, are not negative nor NaN;
  - histograms: only NAME_bucket (with le), NAME_sum and NAME_count; per
    label set the le bounds increase, the bucket counts do not decrease,
    the last le is +Inf and equals NAME_count, NAME_sum is present.
"""
import math
import re
import sys

NAME = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*\Z')
LABEL = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*\Z')
FLOAT = re.compile(r'[+-]?(Inf|NaN|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)\Z')
TYPES = ('counter', 'gauge', 'histogram', 'summary', 'untyped')


class Bad(Exception):
    pass


def parse_value(s):
    if not FLOAT.match(s):
        raise Bad('value %r is not a number' % s)
    return float(s.replace('Inf', 'inf').replace('NaN', 'nan'))


def parse_labels(s, i):
    """Parses '{a="b",...}' from s[i] == '{'; returns (labels, next i)."""
    labels = []
    i += 1
    while True:
        if i < len(s) and s[i] == '}':
            return labels, i + 1
        m = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*').match(s, i)
        if not m:
            raise Bad('bad label name at column %d' % (i + 1))
        lname = m.group(0)
        if lname.startswith('__'):
            raise Bad('reserved label name %r' % lname)
        i = m.end()
        if s[i:i + 2] != '="':
            raise Bad('expected =" after label %r' % lname)
        i += 2
        val = []
        while True:
            if i >= len(s):
                raise Bad('unterminated value of label %r' % lname)
            c = s[i]
            if c == '"':
                i += 1
                break
            if c == '\\':
                if i + 1 >= len(s) or s[i + 1] not in '\\"n':
                    raise Bad('bad escape in the value of label %r' % lname)
                val.append({'\\': '\\', '"': '"', 'n': '\n'}[s[i + 1]])
                i += 2
                continue
            if c == '\n':
                raise Bad('raw newline in a label value')
            val.append(c)
            i += 1
        if any(k == lname for k, _ in labels):
            raise Bad('label %r twice' % lname)
        labels.append((lname, ''.join(val)))
        if i < len(s) and s[i] == ',':
            i += 1
        elif i < len(s) and s[i] == '}':
            continue
        else:
            raise Bad('expected , or } after label %r' % lname)


def check(text):
    errors = []
    if not text.endswith('\n'):
        errors.append('the text does not end with a newline')
    if '\r' in text:
        errors.append('CR in the text')
    help_, type_ = {}, {}
    started, seen = set(), set()
    series = set()
    samples = 0
    hist = {}   # (family, labels without le) -> state
    current = None

    def family_of(name):
        for fam, t in type_.items():
            if t == 'histogram':
                for suf in ('_bucket', '_sum', '_count'):
                    if name == fam + suf:
                        return fam, suf
            elif name == fam:
                return fam, ''
        return None, None

    for n, line in enumerate(text.split('\n')[:-1], 1):
        try:
            if line == '':
                continue
            if line.startswith('#'):
                w = line.split(' ', 3)
                if len(w) >= 3 and w[1] in ('HELP', 'TYPE'):
                    fam = w[2]
                    if not NAME.match(fam):
                        raise Bad('bad metric name %r' % fam)
                    if fam in started:
                        raise Bad('%s of %s after its samples' % (w[1], fam))
                    if fam != current:
                        if fam in seen:
                            raise Bad('family %s is not contiguous' % fam)
                        seen.add(fam)
                        current = fam
                    if w[1] == 'HELP':
                        if fam in help_:
                            raise Bad('second HELP for %s' % fam)
                        doc = w[3] if len(w) > 3 else ''
                        if re.search(r'\\[^\\n]|\\\Z', doc):
                            raise Bad('bad escape in HELP of %s' % fam)
                        help_[fam] = doc
                    else:
                        if fam in type_:
                            raise Bad('second TYPE for %s' % fam)
                        if len(w) != 4 or w[3] not in TYPES:
                            raise Bad('bad TYPE line')
                        type_[fam] = w[3]
                continue
            m = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*').match(line)
            if not m:
                raise Bad('bad sample line')
            name, i = m.group(0), m.end()
            labels = []
            if i < len(line) and line[i] == '{':
                labels, i = parse_labels(line, i)
            rest = line[i:]
            if not rest.startswith(' '):
                raise Bad('expected a space before the value')
            parts = rest[1:].split(' ')
            if len(parts) not in (1, 2) or parts[0] == '':
                raise Bad('expected VALUE [TIMESTAMP]')
            value = parse_value(parts[0])
            if len(parts) == 2 and not re.match(r'-?\d+\Z', parts[1]):
                raise Bad('bad timestamp %r' % parts[1])
            fam, suf = family_of(name)
            if fam is None:
                raise Bad('sample %s has no TYPE before it' % name)
            if fam not in help_:
                raise Bad('family %s has no HELP before its samples' % fam)
            if current != fam:
                raise Bad('family %s is not contiguous' % fam)
            started.add(fam)
            key = (name, tuple(sorted(labels)))
            if key in series:
                raise Bad('series %s%s twice' % (name, dict(labels)))
            series.add(key)
            samples += 1
            t = type_[fam]
            if t == 'counter':
                if not fam.endswith('_total'):
                    raise Bad('counter %s does not end in _total' % fam)
                if math.isnan(value) or value < 0:
                    raise Bad('counter %s is %s' % (name, parts[0]))
            if t == 'histogram':
                le = [v for k, v in labels if k == 'le']
                rest_labels = tuple(sorted((k, v) for k, v in labels
                                           if k != 'le'))
                h = hist.setdefault((fam, rest_labels), {
                    'le': [], 'counts': [], 'sum': None, 'count': None})
                if suf == '_bucket':
                    if len(le) != 1:
                        raise Bad('bucket of %s without le' % fam)
                    bound = parse_value(le[0])
                    if h['le'] and bound <= h['le'][-1]:
                        raise Bad('le of %s not increasing' % fam)
                    if h['counts'] and value < h['counts'][-1]:
                        raise Bad('buckets of %s not cumulative' % fam)
                    if h['count'] is not None:
                        raise Bad('bucket of %s after its _count' % fam)
                    h['le'].append(bound)
                    h['counts'].append(value)
                else:
                    if le:
                        raise Bad('le on %s' % name)
                    h[suf[1:]] = value
        except Bad as e:
            errors.append('line %d: %s' % (n, e))
    for (fam, labels), h in hist.items():
        where = '%s%s' % (fam, dict(labels))
        if not h['le'] or h['le'][-1] != math.inf:
            errors.append('%s: no le="+Inf" bucket' % where)
        elif h['count'] is None or h['count'] != h['counts'][-1]:
            errors.append('%s: _count is not the +Inf bucket' % where)
        if h['sum'] is None:
            errors.append('%s: no _sum' % where)
    for fam in type_:
        if fam not in help_:
            errors.append('family %s has no HELP' % fam)
    return errors, len(type_), samples


def main():
    path = sys.argv[1]
    data = sys.stdin.buffer.read() if path == '-' else open(path, 'rb').read()
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as e:
        print('not UTF-8: %s' % e)
        return 1
    errors, nfam, nsamples = check(text)
    if errors:
        for e in errors:
            print(e)
        return 1
    if nsamples == 0:
        print('no samples')
        return 1
    print('ok: %d families, %d samples' % (nfam, nsamples))
    return 0


if __name__ == '__main__':
    sys.exit(main())
