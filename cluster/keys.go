package cluster

import (
	"encoding/binary"
	"math"
)

// Key layout of the FSM's Pebble instance. Every key starts with one prefix
// byte naming its table; integers are big-endian so that byte order equals
// numeric order; dataset-scoped tables put the 4-byte dataset id right after
// the prefix so that dropping a dataset is one DeleteRange per table.
//
//	table         key                                                   value
//	------------  ----------------------------------------------------  ---------------------------------------------
//	meta          0x01 0x01                                             applied index u64 | applied term u64
//	meta          0x01 0x02                                             next dataset id u32
//	meta          0x01 0x03                                             restore in progress (empty); see snapshot.go
//	dataset       0x02 name                                             dataset id u32 | created unix ns i64 | schema JSON
//	stats         0x03 dsid u32                                         series u64 | rows accepted u64 | rows rejected u64 | transactions u64
//	series        0x10 dsid u32 | series id u64                         per dimension: uvarint len | bytes (schema order)
//	observation   0x11 dsid u32 | series id u64 | period i32^0x80000000 obsValue (see encodeObsValue); legacy, read-only
//	transaction   0x12 dsid u32 | idempotency key                       TxRecord, msgpack
//	tx part       0x13 dsid u32 | key len u16 | key | part u32          part result (IngestResult without Duplicate), msgpack
//	staged        0x14 dsid u32 | raft index u64 | record u32           staged observation block (obsstore.go)
//	chunk         0x15 dsid u32 | series id u64                         the series' observations: chunk, merge operands (obsstore.go)
//	alarm         0x20 alarm id                                         active Alarm, msgpack (alarmWire)
//	alarm history 0x21 clear index u64                                  cleared Alarm, msgpack (alarmWire); last MaxAlarmHistory kept
//	tracking      0x30 table u8 | ...                                   tracking records (tracking.Store; layout in tracking/keys.go)
//	forecast      0x40 dsid u32 | series id u64                         latest forecast of the series (see encodeSeriesForecast)
//	dirty         0x41 dsid u32 | series id u64                         data index u64 | tx id: the series needs a forecast refresh (checkpointed)
//	dirty log     0x42 dsid u32 | index u64                             cleared marks since the last checkpoint; legacy: tx id | series ids (fsm_dirty.go)
//	dirty pending 0x43 dsid u32 | index u64                             empty: an ingest part whose dirty marks are only in memory (fsm_dirty.go)
//	track pending 0x31 raft index u64                                  pendingObjects, msgpack: an ingest part whose object calls are only in memory (fsm_tracking.go)
//	staged pending 0x16 raft index u64                                 dsid u32: an ingest part whose staged blocks are only in memory (obsstore.go)
//	tracking runs 0xfe 'R' | ...                                        the tracking object index's runs (tracking.Config.RunPrefix)
//
// Periods are date32 values (days since 1970-01-01); flipping the sign bit
// ("biased") makes negative periods sort before positive ones.
//
// Dataset ids come from the next-dataset-id counter and are never reused, so
// a deleted dataset's keys can be dropped with DeleteRange while a dataset
// re-created under the same name starts empty, and so idempotency records
// are scoped to one incarnation of a dataset.
//
// The whole FSM state lives in [keyspaceStart, keyspaceEnd); snapshots copy
// exactly that range.
//
// WARNING: this layout is on disk on every node and inside every snapshot.
// Never renumber a prefix or change an encoding in place: add a new prefix
// (and a migration in OpenStore) instead.
const (
	prefixMeta        byte = 0x01
	prefixDataset     byte = 0x02
	prefixStats       byte = 0x03
	prefixSeries      byte = 0x10
	prefixObservation byte = 0x11
	prefixTx          byte = 0x12
	prefixTxPart      byte = 0x13
	// prefixStaged and prefixChunk hold the observations since the
	// staged layout (obsstore.go); prefixObservation is only read.
	prefixStaged byte = 0x14
	prefixChunk  byte = 0x15
	// prefixStagedPending marks the ingest parts whose staged blocks are
	// in memory only, so a restart can stage them again from the
	// replayed Raft entries (obsstore.go, "Volatile blocks").
	prefixStagedPending byte = 0x16
	prefixAlarm         byte = 0x20
	prefixAlarmHist     byte = 0x21
	// prefixTracking is tracking.Config.Prefix: the tracking package owns
	// [0x30, 0x31) and lays its tables out below it.
	prefixTracking byte = 0x30
	// prefixTrackPending marks the ingest parts whose object-index calls
	// are staged in memory only (tracking.Config.VolatileStaging), so a
	// restart can stage them again from the replayed Raft entries.
	prefixTrackPending byte = 0x31
	// prefixForecast, prefixDirty and prefixDirtyLog are the forecast
	// tables (fsm_forecast.go, fsm_dirty.go).
	prefixForecast byte = 0x40
	prefixDirty    byte = 0x41
	prefixDirtyLog byte = 0x42
	// prefixDirtyPending marks the ingest parts whose dirty marks are in
	// memory only, so a restart can mark their series again from the
	// replayed Raft entries (fsm_dirty.go).
	prefixDirtyPending byte = 0x43
	// prefixTrackingRuns is tracking.Config.RunPrefix: the object index's
	// runs, ingested as sstables, must sort after every other key so
	// that they overlap nothing and land in the bottom level
	// (tracking/keys.go, "Where runs go"). Keep it the last prefix.
	prefixTrackingRuns byte = 0xfe

	metaApplied   byte = 0x01
	metaNextID    byte = 0x02
	metaRestoring byte = 0x03
)

// datasetTables lists the prefixes whose keys are scoped by dataset id.
var datasetTables = []byte{prefixStats, prefixSeries, prefixObservation, prefixTx, prefixTxPart, prefixStaged, prefixChunk, prefixForecast, prefixDirty, prefixDirtyLog, prefixDirtyPending}

var (
	keyspaceStart = []byte{0x00}
	keyspaceEnd   = []byte{0xff}

	keyApplied   = []byte{prefixMeta, metaApplied}
	keyNextID    = []byte{prefixMeta, metaNextID}
	keyRestoring = []byte{prefixMeta, metaRestoring}
)

func datasetKey(name string) []byte {
	return append([]byte{prefixDataset}, name...)
}

// dsPrefix returns prefix | dsid.
func dsPrefix(prefix byte, dsid uint32) []byte {
	k := make([]byte, 5, 5+8+4)
	k[0] = prefix
	binary.BigEndian.PutUint32(k[1:], dsid)
	return k
}

// dsRange returns the bounds [lo, hi) of every key of table prefix in dataset dsid.
func dsRange(prefix byte, dsid uint32) (lo, hi []byte) {
	lo = dsPrefix(prefix, dsid)
	if dsid == math.MaxUint32 {
		return lo, []byte{prefix + 1}
	}
	return lo, dsPrefix(prefix, dsid+1)
}

func statsKey(dsid uint32) []byte { return dsPrefix(prefixStats, dsid) }

func seriesKey(dsid uint32, sid uint64) []byte {
	return binary.BigEndian.AppendUint64(dsPrefix(prefixSeries, dsid), sid)
}

func obsSeriesPrefix(dsid uint32, sid uint64) []byte {
	return binary.BigEndian.AppendUint64(dsPrefix(prefixObservation, dsid), sid)
}

// appendObsKey appends the observation key to dst (which may be reused).
func appendObsKey(dst []byte, dsid uint32, sid uint64, period int32) []byte {
	dst = append(dst, prefixObservation)
	dst = binary.BigEndian.AppendUint32(dst, dsid)
	dst = binary.BigEndian.AppendUint64(dst, sid)
	return binary.BigEndian.AppendUint32(dst, biasPeriod(period))
}

func biasPeriod(p int32) uint32   { return uint32(p) ^ 0x80000000 }
func unbiasPeriod(u uint32) int32 { return int32(u ^ 0x80000000) }

func txKey(dsid uint32, key string) []byte {
	return append(dsPrefix(prefixTx, dsid), key...)
}

func txPartKey(dsid uint32, key string, part int) []byte {
	k := dsPrefix(prefixTxPart, dsid)
	k = binary.BigEndian.AppendUint16(k, uint16(len(key)))
	k = append(k, key...)
	return binary.BigEndian.AppendUint32(k, uint32(part))
}

// encodeDims encodes dimension values in schema order.
func encodeDims(vals []string) []byte {
	n := 0
	for _, v := range vals {
		n += binary.MaxVarintLen32 + len(v)
	}
	b := make([]byte, 0, n)
	for _, v := range vals {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

func decodeDims(b []byte, n int) ([]string, bool) {
	out := make([]string, 0, n)
	for len(b) > 0 {
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < l {
			return nil, false
		}
		out = append(out, string(b[k:k+int(l)]))
		b = b[k+int(l):]
	}
	return out, len(out) == n
}

// Observation values:
//
//	+-------+-------------+------+-----------------------+--------------------+-----------+
//	| flags | measure f64 | ncov | null mask ceil(n/8) B | f64 per non-null   | object id |
//	| 1 B   | 8 B BE bits | 1 B  | bit i set = cov null  | covariate, in order| rest      |
//	+-------+-------------+------+-----------------------+--------------------+-----------+
//
// flags bit 0: an object id follows (it may be empty only when the bit is 0).
// flags bit 1 (obsFlagSum): in a chunk, the measure adds to the older value
// of the period (obsstore.go); never set in legacy observation keys.
// The "sum" merge operator (mergerName) adds the measures of all operands
// and keeps every other field of the newest operand.
//
// WARNING: on disk; the merge operator's name is recorded by Pebble and must
// stay mergerName for as long as this encoding is in use.
const obsFlagObjectID = 0x01

func appendObsValue(dst []byte, measure float64, covs []float64, covNull []bool, objectID string, hasObject bool) []byte {
	var flags byte
	if hasObject {
		flags |= obsFlagObjectID
	}
	dst = append(dst, flags)
	dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(measure))
	dst = append(dst, byte(len(covs)))
	maskAt := len(dst)
	for range (len(covs) + 7) / 8 {
		dst = append(dst, 0)
	}
	for i, c := range covs {
		if covNull[i] {
			dst[maskAt+i/8] |= 1 << (i % 8)
			continue
		}
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(c))
	}
	if hasObject {
		dst = append(dst, objectID...)
	}
	return dst
}

// obsMeasure returns the measure of an encoded value.
func obsMeasure(v []byte) (float64, bool) {
	if len(v) < 10 {
		return 0, false
	}
	return math.Float64frombits(binary.BigEndian.Uint64(v[1:9])), true
}

func decodeObsValue(v []byte) (o Observation, ok bool) {
	if len(v) < 10 {
		return o, false
	}
	flags := v[0]
	o.Value = math.Float64frombits(binary.BigEndian.Uint64(v[1:9]))
	n := int(v[9])
	rest := v[10:]
	ml := (n + 7) / 8
	if len(rest) < ml {
		return o, false
	}
	mask := rest[:ml]
	rest = rest[ml:]
	if n > 0 {
		o.Covariates = make([]float64, n)
	}
	for i := range n {
		if mask[i/8]&(1<<(i%8)) != 0 {
			o.Covariates[i] = math.NaN()
			continue
		}
		if len(rest) < 8 {
			return o, false
		}
		o.Covariates[i] = math.Float64frombits(binary.BigEndian.Uint64(rest))
		rest = rest[8:]
	}
	if flags&obsFlagObjectID != 0 {
		o.ObjectID = string(rest)
	} else if len(rest) != 0 {
		return o, false
	}
	return o, true
}

func putU64(b []byte, v uint64) { binary.BigEndian.PutUint64(b, v) }
func putU32(b []byte, v uint32) { binary.BigEndian.PutUint32(b, v) }
