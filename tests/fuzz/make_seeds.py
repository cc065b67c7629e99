#!/usr/bin/env python3
"""Write the seed corpora of tests/fuzz/corpus/<target>/ from the test
fixtures (tests/fixtures/aws), the seed data (examples/) and the hostile
inputs of tests/check_hostile.c. Each file is <selector byte><input>, the
selector as each fuzz_<target>.c describes. Rerun after adding fixtures;
files found by fuzzing (crash-*, regress-*) are kept: only seed-* files are
rewritten."""
import base64, hashlib, json, os, re, struct, sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, '..', '..'))
aws = os.path.join(root, 'tests', 'fixtures', 'aws')
ex = os.path.join(root, 'examples')

def rd(p):
    with open(p, 'rb') as f:
        return f.read()

def put(target, sel, data, name):
    d = os.path.join(here, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    blob = bytes([sel]) + data
    h = hashlib.sha1(blob).hexdigest()[:10]
    with open(os.path.join(d, f'seed-{name}-{h}'), 'wb') as f:
        f.write(blob)

for target in ('batch', 'rules', 'load', 'base64', 'roundtrip'):
    d = os.path.join(here, 'corpus', target)
    if os.path.isdir(d):
        for fn in os.listdir(d):
            if fn.startswith('seed-'):
                os.remove(os.path.join(d, fn))

events = rd(os.path.join(ex, 'seed-events.ndjson'))
hostile = [
    b'{"productId":"PROD-001","deep":' + b'[' * 200 + b']' * 200 + b'}\n',
    b'{"productId":"PROD-001","bad":"\xff\xfe"}\n',
    b'{"productId":"PROD-\\u0000"}\n',
    b'{"productId":"PROD-001","n":123456789012345678901234567890,"f":9007199254740993}\n',
    b'{"productId":"PROD-001","productId":"PROD-002"}\n',
    b'{"productId":"' + b'k' * 600 + b'"}\n',
    b'{"productId":42,"timestamp":"../../etc/passwd"}\n',
    b'{"productId":"PROD-002","timestamp":1709632800123,"device":{"product":{"id":"PROD-001"}}}\n',
    b'{"region":"eu","sku":"A1","productId":"PROD-001","enrichmentStatus":"x","when":"2024-02-29"}\n',
    b'[1,2]\n"str"\n\n{}\r\n{"productId":null}\n',
]
# batch: NDJSON and array shapes with every rule set, and the AWS fixtures.
for rs in range(4):
    put('batch', rs << 5, events, f'ndjson-rs{rs}')
    lines = [l for l in events.splitlines() if l.strip()]
    put('batch', (rs << 5) | 1, b'[' + b','.join(lines) + b']', f'array-rs{rs}')
    put('batch', (rs << 5) | 8, b''.join(hostile), f'hostile-rs{rs}')
put('batch', 0x10, b''.join(hostile), 'hostile-depth')
put('batch', 0x80, events, 'small-limits')
shape_of = {'pipes': 2, 'firehose': 3, 'lambda-kinesis': 4}
for fn in sorted(os.listdir(aws)):
    if not fn.endswith('.json'):
        continue
    for pre, sel in shape_of.items():
        if fn.startswith(pre):
            data = rd(os.path.join(aws, fn))
            for rs in (0, 2):
                put('batch', sel | (rs << 5), data, fn[:24] + f'-rs{rs}')
            put('batch', sel | 0x80, data, fn[:24] + '-limit')
# The seed events as each AWS shape.
recs = [base64.b64encode(l).decode() for l in events.splitlines() if l.strip()]
put('batch', 2, json.dumps([{'eventID': f'e{i}', 'data': r, 'approximateArrivalTimestamp': 1.7e9}
                            for i, r in enumerate(recs)]).encode(), 'pipes-seed')
put('batch', 3, json.dumps({'records': [{'recordId': f'r{i}', 'data': r,
                                         'approximateArrivalTimestamp': 1706745600000}
                                        for i, r in enumerate(recs)]}).encode(), 'firehose-seed')
put('batch', 4, json.dumps({'Records': [{'kinesis': {'sequenceNumber': str(i), 'data': r,
                                                     'approximateArrivalTimestamp': 1.7e9}}
                                        for i, r in enumerate(recs)]}).encode(), 'kinesis-seed')
# Batches longer than the engine's lookahead window (16 records), every kind
# of record mixed in, so that the memo-off twin's windows are cut everywhere.
def mixed(i):
    ev = [b'{"productId":"PROD-001","n":%d}' % i, b'{"productId":"PROD-009"}', b'{"x":1}',
          b'[1,2]', b'{"productId":', b'{"productId":"PROD-002","region":"eu","sku":"A1"}'][i % 6]
    return [base64.b64encode(ev).decode(), '@@@@', 'e30\\/', None, 12][(i // 6) % 5] if i % 7 else ev

for name, sel in (('pipes', 2), ('firehose', 3), ('kinesis', 4)):
    items = []
    for i in range(37):
        d = mixed(i)
        data = ('' if d is None else ',"data":' + (d.decode() if isinstance(d, bytes) else json.dumps(d)
                                                   if not isinstance(d, str) else '"%s"' % d))
        if sel == 2:
            eid = ['"eventID":"e%d",' % i, '"eventID":%d,' % i, '', '"eventID":null,'][i % 4]
            items.append('{%s"z":0%s}' % (eid, data) if i % 11 != 5 else '"not an object"')
        elif sel == 3:
            items.append('{"recordId":"r%d"%s,"approximateArrivalTimestamp":%d}' % (i, data, 1706745600000 + i))
        else:
            items.append('{"kinesis":{"sequenceNumber":"%d"%s,"approximateArrivalTimestamp":%d.5}}' % (i, data, 1706745600 + i))
    body = '[' + ','.join(items) + ']'
    src = body if sel == 2 else json.dumps({}) [:-1] + '"%s":%s}' % ('records' if sel == 3 else 'Records', body)
    for rs in (0, 2):
        put('batch', sel | (rs << 5), src.encode(), f'{name}-window-rs{rs}')

# Batches whose records are written alike, as AWS writes them, one record
# changed: what the envelope template (lib/aws/aws_envelope.c) reads, and
# each way it must hand a record back to the scanner.
def aws_like(sel, i, change):
    d = base64.b64encode(events.splitlines()[i % 3]).decode()
    if sel == 3:
        top = [('recordId', '"r%d"' % i), ('approximateArrivalTimestamp', str(1706745600000 + i)),
               ('data', '"%s"' % d), ('kinesisRecordMetadata', None)]
        sub = [('shardId', '"shardId-000000000000"'), ('partitionKey', '"pk"'),
               ('sequenceNumber', '"4954698668313554428650745793632162567570019247115678515%d"' % (i % 10)),
               ('subsequenceNumber', '0')]
    else:
        sub = [('kinesisSchemaVersion', '"1.0"'), ('partitionKey', '"pk-%d"' % (i % 2)),
               ('sequenceNumber', '"49590338271490256608559692538361571095921575989136588%03d"' % i),
               ('data', '"%s"' % d), ('approximateArrivalTimestamp', '%d.%03d' % (1706745600 + i, i))]
        top = [('eventSource', '"aws:kinesis"'), ('eventID', '"shardId-000000000006:%d"' % i),
               ('awsRegion', '"us-east-2"')]
        if sel == 4:
            top = [('kinesis', None)] + top
        else:
            top, sub = sub + top, []
    if change:
        lst, k, how, v = change
        lst = top if lst == 'top' or not sub else sub
        k %= len(lst) - (how == 'swap')
        name, val = lst[k]
        if how == 'value':
            lst[k] = (name, v)
        elif how == 'name':
            lst[k] = (v, val)
        elif how == 'dup':
            lst.insert(k, (name, v))
        elif how == 'drop':
            del lst[k]
        elif how == 'swap':
            lst[k], lst[k + 1] = lst[k + 1], lst[k]
    obj = lambda ms, inner: '{' + ','.join('"%s":%s' % (n, inner if v is None else v) for n, v in ms) + '}'
    return obj(top, obj(sub, ''))

changes = [('top', 1, 'value', 'tru'), ('top', 1, 'value', '"\udcff"'), ('top', 2, 'value', '"a\\u0000"'),
           ('sub', 2, 'value', '{"id":1}'), ('sub', 2, 'value', '12345'), ('sub', 4, 'value', '"2024-05-01T00:00:00Z"'),
           ('top', 1, 'value', '[[[[[[[1]]]]]]]'), ('sub', 3, 'value', '"@@@@"'), ('top', 0, 'name', 'd\\u0061ta'),
           ('sub', 1, 'dup', '"other"'), ('sub', 1, 'drop', None), ('sub', 0, 'swap', None),
           ('top', 1, 'value', '"arn:aws:kinesis:us-east-2:1:stream/\u00e9"'), ('top', 1, 'value', '01')]
for name, sel in (('pipes', 2), ('firehose', 3), ('kinesis', 4)):
    for c, change in enumerate(changes):
        recs2 = [aws_like(sel, i, change if i == 3 else None) for i in range(6)]
        body = '[' + ','.join(recs2) + ']'
        src = body if sel == 2 else '{"%s":%s}' % ('records' if sel == 3 else 'Records', body)
        put('batch', sel | (0x10 if c % 4 == 3 else 0) | ((c % 4) << 5),
            src.encode('utf-8', 'surrogateescape'),  # '\udcff': the byte 0xff
            f'{name}-template-{c}')

# rules: the seed rules, the fuzz_batch rule sets, each with and without a run.
rule_sets = [rd(os.path.join(ex, 'seed-rules.json'))]
src = open(os.path.join(here, 'fuzz_batch.c')).read()
block = src[src.index('rule_sets[4]'):src.index('};', src.index('rule_sets[4]'))]
for m in re.finditer(r'((?:\s*"(?:[^"\\]|\\.)*"\s*)+),', block):
    s = ''.join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1)))
    s = s.encode().decode('unicode_escape').encode()
    if s.startswith(b'{'):
        rule_sets.append(s)
docs = open(os.path.join(root, 'docs', 'rules.md')).read()
for m in re.finditer(r'```json\n(.*?)```', docs, re.S):
    rule_sets.append(m.group(1).encode())
for i, r in enumerate(rule_sets):
    put('rules', 0, r, f'rules{i}')
    put('rules', 1, r, f'rules{i}-run')
    put('rules', 3, r, f'rules{i}-run-rebuild')

# load: every format, keys renamed to id (and id,sk for composite).
def rekey(b):
    return b.replace(b'"productId"', b'"id"').replace(b'"Id"', b'"id"').replace(b'"key"', b'"id"')
ddb = rd(os.path.join(ex, 'seed-products.ddb.jsonl'))
put('load', 2, rekey(ddb), 'ddb-seed')
put('load', 2, rekey(rd(os.path.join(aws, 'dynamodb-export-item.awsdocs.jsonl'))), 'ddb-export')
put('load', 2, b'[' + b','.join(l for l in rekey(ddb).splitlines() if l.strip()) + b']', 'ddb-array')
put('load', 3, rekey(rd(os.path.join(aws, 'dynamodb-stream-event-all-types.aws-lambda-go.json'))),
    'ddb-stream')
put('load', 0x83, rekey(rd(os.path.join(aws, 'dynamodb-stream-event-all-types.aws-lambda-go.json'))),
    'ddb-stream-store')
nd = b'{"id":"a","v":1,"o":{"x":[1,2]}}\n{"id":2,"v":"\\u00e9"}\r\n\n{"id":"a","v":3,"v":4}\n'
put('load', 0, nd, 'ndjson')
put('load', 0x80, nd, 'ndjson-store')
put('load', 1, b'[' + b','.join(l for l in nd.splitlines() if l.strip()) + b']', 'array')
put('load', 8, b'{"id":"a","sk":"1","v":1}\n{"id":"a","sk":2}\n', 'composite')
put('load', 0x88, b'{"id":"a","sk":"1","v":1}\n{"id":"a","sk":2}\n', 'composite-store')
csv = b'id,name,price,ok,doc\r\na,"Smart, ""Sensor""",49.99,true,"{""x"":1}"\r\nb,,1,false,[]\n'
put('load', 4, csv, 'csv')
put('load', 0x14, b'price:number,ok:boolean,doc:json\0' + csv, 'csv-typed')
put('load', 0x94, b'price:number,ok:boolean,doc:json\0' + csv, 'csv-typed-store')
put('load', 0, b'{"id":"' + b'k' * 600 + b'"}\n', 'key-too-long')
put('load', 0, b'{"id":"x","d":' + b'[' * 150 + b']' * 150 + b'}\n', 'too-deep')
put('load', 0, b'{"id":"x","n":123456789012345678901234567890}\n{"id":"\xc3\x28"}\n', 'bigint-utf8')

# base64: data fields of the fixtures, both directions.
for fn in sorted(os.listdir(aws)):
    if fn.endswith('.json'):
        for m in sorted(set(re.findall(rb'"data"\s*:\s*"([A-Za-z0-9+/=]*)"', rd(os.path.join(aws, fn)))))[:3]:
            put('base64', 1, m, 'fixture')
            put('base64', 0, base64.b64decode(m), 'fixture-raw')
for t in (b'', b'QQ==', b'QR==', b'QUI=', b'QUJD', b'Q===', b'====', b'QU JD', b'QUJD\n'):
    put('base64', 1, t, 'edge')
put('base64', 0, bytes(range(256)), 'bytes')

# roundtrip: JSON objects, gzip, item values, strings.
for i, l in enumerate(l for l in events.splitlines() + hostile if l.strip()):
    put('roundtrip', 0, l, f'json{i}')
put('roundtrip', 0, b'{"a\\u00e9\\ud83d\\ude00":1,"a":[1,{"b":null}],"a":"x\\n"}', 'json-escapes')
put('roundtrip', 1, bytes([7]) + events, 'gzip')
put('roundtrip', 1, bytes([0]) + b'', 'gzip-empty')
text = b'"id":"a","v":[1,2]'
item = struct.pack('<IIII', 0x31544945, 2, 1, len(text)) + struct.pack('<IIII', 0, 4, 5, 3) + \
    struct.pack('<IIII', 9, 3, 13, 5) + text
put('roundtrip', 2, item, 'item')
put('roundtrip', 2, item[:-1], 'item-short')
put('roundtrip', 2, struct.pack('<IIII', 0x31544945, 0xffffffff, 0, 16), 'item-huge-count')
for s in (b'plain', b'quote"back\\slash', b'\x00nul', b'\xff', b'\xe2\x82\xac\xf0\x9f\x98\x80',
          b'\x01\x1f\x7f', b'\xed\xa0\x80'):
    put('roundtrip', 3, s, 'string')
print('seeds written')
