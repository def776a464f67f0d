package cluster

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/demandflow/demandflow/stream"
)

// Forecast command types. They continue the append-only numbering of
// commands.go (6 and 7 are tracking's); see there for the rules.
const (
	// CmdSetForecastConfig replaces a dataset's forecast configuration
	// (EncodeSetForecastConfig). Not ignorable: it changes the schema.
	CmdSetForecastConfig CommandType = 8
	// CmdForecastResults stores a batch of series forecasts computed by the
	// series' owner node (EncodeForecastResults). Ignorable: forecasts are
	// derived data that a node which skips them lacks until the next refresh.
	CmdForecastResults CommandType = IgnorableCommand | 9
	// CmdForecastRefresh asks for a full refit of every (or every matching)
	// series of a dataset (EncodeForecastRefresh). Ignorable like results.
	CmdForecastRefresh CommandType = IgnorableCommand | 10
)

// Forecast entries (see the envelope in commands.go):
//
//	set_forecast_config  none (forecastConfigHeader: dataset name, config JSON)
//	forecast_results     per series: uvarint length | series forecast record
//	                     (encodeSeriesForecast); forecastResultsHeader
//	forecast_refresh     per series to refit: series id u64 (big-endian);
//	                     empty = every series (forecastRefreshHeader)
//
// WARNING: on disk in the Raft log, see commands.go.

// MaxForecastEntry is the size forecast result entries are cut to (the
// STYLE warning threshold; well below raft.SuggestedMaxDataSize).
const MaxForecastEntry = 256 << 10

type forecastConfigHeader struct {
	Dataset string `codec:"ds"`
	Config  []byte `codec:"cfg"` // stream.ForecastConfig JSON; empty = defaults
	At      int64  `codec:"at"`
}

type forecastResultsHeader struct {
	Dataset string `codec:"ds"`
	DSID    uint32 `codec:"dsid"` // dataset incarnation the results belong to
	Node    string `codec:"node"`
	At      int64  `codec:"at"`
	Count   int    `codec:"n"`
}

type forecastRefreshHeader struct {
	Dataset string `codec:"ds"`
	At      int64  `codec:"at"`
	Count   int    `codec:"n"` // series ids in the payload; 0 = all
}

// EncodeSetForecastConfig encodes the command that replaces the forecast
// configuration of dataset with cfg (nil = defaults). cfg must pass
// Validate; the model name is the caller's to check (see
// stream.ForecastConfig).
func EncodeSetForecastConfig(dataset string, cfg *stream.ForecastConfig, at time.Time) ([]byte, error) {
	if dataset == "" {
		return nil, errors.New("encode forecast config: empty dataset")
	}
	var js []byte
	if cfg != nil {
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		var err error
		if js, err = json.Marshal(cfg); err != nil {
			return nil, fmt.Errorf("encode forecast config: %w", err)
		}
	}
	return encodeEntry(CmdSetForecastConfig, &forecastConfigHeader{Dataset: dataset, Config: js, At: at.UnixNano()}, nil)
}

// EncodeForecastRefresh encodes a forced refit of the given series of
// dataset (all series when ids is empty).
func EncodeForecastRefresh(dataset string, ids []uint64, at time.Time) ([]byte, error) {
	if dataset == "" {
		return nil, errors.New("encode forecast refresh: empty dataset")
	}
	payload := make([]byte, 0, 8*len(ids))
	for _, id := range ids {
		payload = binary.BigEndian.AppendUint64(payload, id)
	}
	return encodeEntry(CmdForecastRefresh, &forecastRefreshHeader{Dataset: dataset, At: at.UnixNano(), Count: len(ids)}, payload)
}

// SeriesForecast is the stored forecast of one series. Values returned by
// the Store are fresh copies the caller may keep.
type SeriesForecast struct {
	SeriesID uint64
	// DataIndex is the Raft index of the newest ingest this forecast has
	// seen (the dirty mark it answers); a result with a lower DataIndex
	// than the stored one is ignored as stale.
	DataIndex uint64
	// FittedAt is when the model's parameters were estimated; ComputedAt
	// when this forecast was produced (later than FittedAt after cheap
	// state updates).
	FittedAt   time.Time
	ComputedAt time.Time
	// LastPeriod is the stream.PeriodIndex of the series' last
	// observation; step k forecasts period index LastPeriod + k.
	LastPeriod int64
	// Observations is the number of periods the model saw (gaps filled).
	Observations int
	// Updated is true when the forecast comes from a state update of an
	// earlier fit rather than a full refit.
	Updated bool
	// Model is the fitted model's description (forecast.Fitted.Method).
	Model string
	// Levels are the interval levels in percent; Lower[i] and Upper[i]
	// belong to Levels[i] and have len(Mean) values.
	Levels []float64
	Mean   []float64
	Lower  [][]float64
	Upper  [][]float64
}

// Series forecast record (the value under prefixForecast and the element of
// a forecast_results payload). All integers big-endian, floats as IEEE bits:
//
//	version u8 (1) | series id u64 | data index u64 | fitted at i64 ns |
//	computed at i64 ns | last period i64 | observations u32 | flags u8
//	(bit 0 updated) | horizon u16 | levels u8 | level f64 * levels |
//	model uvarint len | model bytes | mean f64 * h |
//	(lo f64 * h | hi f64 * h) * levels
//
// WARNING: on disk and in the Raft log; add a version, never change v1.
const forecastRecordV1 = 1

// forecastRecordFixed is the size of a record's fixed-width head.
const forecastRecordFixed = 1 + 8 + 8 + 8 + 8 + 8 + 4 + 1 + 2 + 1

func appendSeriesForecast(dst []byte, f *SeriesForecast) ([]byte, error) {
	h := len(f.Mean)
	if h > math.MaxUint16 || len(f.Levels) > math.MaxUint8 || len(f.Lower) != len(f.Levels) || len(f.Upper) != len(f.Levels) {
		return nil, fmt.Errorf("encode forecast of series %016x: bad shape (h %d, %d levels)", f.SeriesID, h, len(f.Levels))
	}
	for i := range f.Levels {
		if len(f.Lower[i]) != h || len(f.Upper[i]) != h {
			return nil, fmt.Errorf("encode forecast of series %016x: level %g has %d/%d bounds for %d steps",
				f.SeriesID, f.Levels[i], len(f.Lower[i]), len(f.Upper[i]), h)
		}
	}
	dst = append(dst, forecastRecordV1)
	dst = binary.BigEndian.AppendUint64(dst, f.SeriesID)
	dst = binary.BigEndian.AppendUint64(dst, f.DataIndex)
	dst = binary.BigEndian.AppendUint64(dst, uint64(f.FittedAt.UnixNano()))
	dst = binary.BigEndian.AppendUint64(dst, uint64(f.ComputedAt.UnixNano()))
	dst = binary.BigEndian.AppendUint64(dst, uint64(f.LastPeriod))
	dst = binary.BigEndian.AppendUint32(dst, uint32(min(f.Observations, math.MaxUint32)))
	var flags byte
	if f.Updated {
		flags |= 1
	}
	dst = append(dst, flags)
	dst = binary.BigEndian.AppendUint16(dst, uint16(h))
	dst = append(dst, byte(len(f.Levels)))
	for _, l := range f.Levels {
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(l))
	}
	dst = binary.AppendUvarint(dst, uint64(len(f.Model)))
	dst = append(dst, f.Model...)
	appendFloats := func(v []float64) {
		for _, x := range v {
			dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(x))
		}
	}
	appendFloats(f.Mean)
	for i := range f.Levels {
		appendFloats(f.Lower[i])
		appendFloats(f.Upper[i])
	}
	return dst, nil
}

// seriesForecastSize is the encoded size of f.
func seriesForecastSize(f *SeriesForecast) int {
	return forecastRecordFixed + 8*len(f.Levels) + binary.MaxVarintLen16 + len(f.Model) + 8*len(f.Mean)*(1+2*len(f.Levels))
}

var errBadForecastRecord = errors.New("malformed forecast record")

// decodeSeriesForecast decodes one record into fresh slices.
func decodeSeriesForecast(b []byte) (*SeriesForecast, error) {
	if len(b) < forecastRecordFixed || b[0] != forecastRecordV1 {
		return nil, errBadForecastRecord
	}
	f := &SeriesForecast{
		SeriesID:     binary.BigEndian.Uint64(b[1:]),
		DataIndex:    binary.BigEndian.Uint64(b[9:]),
		FittedAt:     time.Unix(0, int64(binary.BigEndian.Uint64(b[17:]))).UTC(),
		ComputedAt:   time.Unix(0, int64(binary.BigEndian.Uint64(b[25:]))).UTC(),
		LastPeriod:   int64(binary.BigEndian.Uint64(b[33:])),
		Observations: int(binary.BigEndian.Uint32(b[41:])),
		Updated:      b[45]&1 != 0,
	}
	h := int(binary.BigEndian.Uint16(b[46:]))
	nl := int(b[48])
	rest := b[forecastRecordFixed:]
	if len(rest) < 8*nl {
		return nil, errBadForecastRecord
	}
	f.Levels = make([]float64, nl)
	for i := range nl {
		f.Levels[i] = math.Float64frombits(binary.BigEndian.Uint64(rest[8*i:]))
	}
	rest = rest[8*nl:]
	ml, k := binary.Uvarint(rest)
	if k <= 0 || uint64(len(rest)-k) < ml {
		return nil, errBadForecastRecord
	}
	f.Model = string(rest[k : k+int(ml)])
	rest = rest[k+int(ml):]
	if len(rest) != 8*h*(1+2*nl) {
		return nil, errBadForecastRecord
	}
	vals := make([]float64, h*(1+2*nl))
	for i := range vals {
		vals[i] = math.Float64frombits(binary.BigEndian.Uint64(rest[8*i:]))
	}
	f.Mean = vals[:h:h]
	f.Lower = make([][]float64, nl)
	f.Upper = make([][]float64, nl)
	for i := range nl {
		off := h * (1 + 2*i)
		f.Lower[i] = vals[off : off+h : off+h]
		f.Upper[i] = vals[off+h : off+2*h : off+2*h]
	}
	return f, nil
}

// recordDataIndex returns the data index of an encoded record without
// decoding the rest.
func recordDataIndex(b []byte) (uint64, bool) {
	if len(b) < forecastRecordFixed || b[0] != forecastRecordV1 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[9:]), true
}

// ForecastBatch accumulates series forecasts of one dataset into
// forecast_results entries of at most MaxForecastEntry bytes. It is not safe
// for concurrent use.
type ForecastBatch struct {
	hdr     forecastResultsHeader
	payload []byte
	count   int
	entries [][]byte
}

// NewForecastBatch starts a batch of results for dataset (incarnation dsid,
// see DatasetInfo.ID) computed by node at time at.
func NewForecastBatch(dataset string, dsid uint32, node string, at time.Time) *ForecastBatch {
	return &ForecastBatch{hdr: forecastResultsHeader{Dataset: dataset, DSID: dsid, Node: node, At: at.UnixNano()}}
}

// Add appends f, closing the current entry first when f would not fit.
func (b *ForecastBatch) Add(f *SeriesForecast) error {
	need := seriesForecastSize(f) + binary.MaxVarintLen32
	if b.count > 0 && len(b.payload)+need > MaxForecastEntry-512 {
		if err := b.flush(); err != nil {
			return err
		}
	}
	rec, err := appendSeriesForecast(nil, f)
	if err != nil {
		return err
	}
	if len(rec) > MaxForecastEntry-512 {
		return fmt.Errorf("encode forecast of series %016x: %d bytes, above the %d byte entry limit", f.SeriesID, len(rec), MaxForecastEntry)
	}
	b.payload = binary.AppendUvarint(b.payload, uint64(len(rec)))
	b.payload = append(b.payload, rec...)
	b.count++
	return nil
}

func (b *ForecastBatch) flush() error {
	if b.count == 0 {
		return nil
	}
	h := b.hdr
	h.Count = b.count
	e, err := encodeEntry(CmdForecastResults, &h, b.payload)
	if err != nil {
		return err
	}
	b.entries = append(b.entries, e)
	b.payload, b.count = nil, 0
	return nil
}

// Entries closes the batch and returns its encoded entries, in Add order.
func (b *ForecastBatch) Entries() ([][]byte, error) {
	if err := b.flush(); err != nil {
		return nil, err
	}
	out := b.entries
	b.entries = nil
	return out, nil
}

// decodeForecastResults splits a forecast_results payload into records.
func decodeForecastResults(payload []byte, fn func(rec []byte) error) error {
	for len(payload) > 0 {
		l, k := binary.Uvarint(payload)
		if k <= 0 || uint64(len(payload)-k) < l {
			return errBadForecastRecord
		}
		if err := fn(payload[k : k+int(l)]); err != nil {
			return err
		}
		payload = payload[k+int(l):]
	}
	return nil
}
