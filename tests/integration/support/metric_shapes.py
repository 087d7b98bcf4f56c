#!/usr/bin/env python3
"""Prints the shape of a Prometheus text exposition: one line per metric family,
"name {label,names} type", sorted; label names are the union over the family's samples.
Histogram and summary samples (_bucket, _sum, _count) fold into their family."""
import re
import sys

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"')


def shapes(text):
    types = {}
    labels = {}
    for line in text.splitlines():
        if line.startswith('# TYPE '):
            _, _, name, kind = line.split(None, 3)
            types[name] = kind.strip()
            labels.setdefault(name, set())
            continue
        if not line or line.startswith('#'):
            continue
        match = SAMPLE.match(line)
        if not match:
            raise SystemExit('unparsable sample line: ' + line)
        name = match.group(1)
        family = name
        for suffix in ('_bucket', '_sum', '_count'):
            if name.endswith(suffix) and name[:-len(suffix)] in types:
                family = name[:-len(suffix)]
        names = set(LABEL.findall(match.group(3) or '')) - {'le', 'quantile'}
        labels.setdefault(family, set()).update(names)
    return sorted('%s {%s} %s' % (n, ','.join(sorted(labels[n])), types.get(n, 'untyped'))
                  for n in labels)


if __name__ == '__main__':
    with open(sys.argv[1]) as f:
        print('\n'.join(shapes(f.read())))
