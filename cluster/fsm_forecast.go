package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"github.com/demandflow/demandflow/stream"
)

// Forecast state in the FSM.
//
// Dirty marks (fsm_dirty.go): every ingest part marks each series it
// touched with the part's Raft index, so the set of series awaiting a
// refresh is replicated, survives restarts and snapshots, and is the same on
// every node (an owner that dies leaves its dirty series to the survivors).
// Results (CmdForecastResults) carry the dirty index their owner read
// before it read the history; applying a result clears the mark only when
// the mark is not newer, so data that arrived during the fit keeps its
// series dirty.
//
// Forecasts: prefixForecast | dsid | series id holds the newest
// SeriesForecast record. A result older (lower DataIndex) than the stored
// one is ignored, so two nodes that briefly both believed they owned a
// series cannot roll a forecast back.
//
// Forced refits (CmdForecastRefresh) mark the chosen series dirty and set
// the dataset's refresh index (the 5-byte key prefixDirty | dsid, which
// sorts before the dataset's marks); an owner refits instead of updating any
// model fitted before that index.

func forecastKey(dsid uint32, sid uint64) []byte {
	return binary.BigEndian.AppendUint64(dsPrefix(prefixForecast, dsid), sid)
}

func dirtyKey(dsid uint32, sid uint64) []byte {
	return binary.BigEndian.AppendUint64(dsPrefix(prefixDirty, dsid), sid)
}

func refreshIndexKey(dsid uint32) []byte { return dsPrefix(prefixDirty, dsid) }

// forecastWork is the forecast overlay of one apply batch (reads of the
// committed state do not see the open batch).
type forecastWork struct {
	dirty   map[seriesRef]dirtyMark // staged marks; index 0 = deleted in this batch
	results map[seriesRef]uint64    // data index of results written in this batch
	// touches are ingest parts' marks not yet merged into dirty
	// (fsm_dirty.go); logged and checkpointed count, per dataset id, the
	// pending keys and dirty log records written since the last
	// checkpoint and the checkpoints of this batch. verify keeps every
	// touch for verifyDirtyCheckpoints.
	touches      []touch
	verify       []touch
	logged       map[uint32]int
	checkpointed map[uint32]int
	// cpIndex is the index of the dataset's last checkpoint in this
	// batch; clearedLogged the series of clear records logged after it.
	cpIndex       map[uint32]uint64
	clearedLogged map[uint32][]uint64
}

func (ac *applyCtx) forecastWork() *forecastWork {
	if ac.fc == nil {
		ac.fc = &forecastWork{dirty: map[seriesRef]dirtyMark{}, results: map[seriesRef]uint64{},
			logged: map[uint32]int{}, checkpointed: map[uint32]int{},
			cpIndex: map[uint32]uint64{}, clearedLogged: map[uint32][]uint64{}}
	}
	return ac.fc
}

// resultIndex returns the data index of the series' stored forecast.
func (ac *applyCtx) resultIndex(ref seriesRef) (uint64, bool) {
	if ac.fc != nil {
		if d, ok := ac.fc.results[ref]; ok {
			return d, true
		}
	}
	v, ok := ac.s.get(forecastKey(ref.dsid, ref.sid))
	if !ok {
		return 0, false
	}
	return recordDataIndex(v)
}

// seriesKnown reports whether the series exists as of this point of the batch.
func (ac *applyCtx) seriesKnown(e *dsEntry, sid uint64) bool {
	if e.known.Has(sid) {
		return true
	}
	_, ok := ac.series[seriesRef{e.id, sid}]
	return ok
}

// ErrInvalidForecastConfig is wrapped by the rejection of a forecast
// configuration the FSM cannot accept.
var ErrInvalidForecastConfig = errors.New("cluster: invalid forecast configuration")

// applySetForecastConfig replaces the dataset's schema with one carrying the
// new forecast configuration. Response: nil, or an error wrapping
// ErrUnknownDataset or stream.ErrInvalidSchema.
func (f *FSM) applySetForecastConfig(ac *applyCtx, index uint64, h []byte) any {
	var hdr forecastConfigHeader
	if err := decodeHeader(h, &hdr); err != nil {
		divergence(CmdSetForecastConfig, index, err)
	}
	e := ac.dataset(hdr.Dataset)
	if e == nil {
		return fmt.Errorf("%w: %q", ErrUnknownDataset, hdr.Dataset)
	}
	var cfg *stream.ForecastConfig
	if len(hdr.Config) > 0 {
		cfg = &stream.ForecastConfig{}
		if err := json.Unmarshal(hdr.Config, cfg); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidForecastConfig, err)
		}
		if err := cfg.Validate(); err != nil {
			return err
		}
	}
	sc := *e.schema
	sc.Forecast = cfg
	js, err := json.Marshal(&sc)
	if err != nil {
		panic(fmt.Sprintf("cluster: fsm: encode schema: %v", err))
	}
	ne := &dsEntry{id: e.id, schema: &sc, created: e.created, known: e.known, dirty: e.dirty}
	ne.series.Store(e.series.Load())
	ne.accepted.Store(e.accepted.Load())
	ne.rejected.Store(e.rejected.Load())
	ne.txs.Store(e.txs.Load())
	if w, ok := ac.stats[e.id]; ok {
		w.e = ne
	}
	must(ac.b.Set(datasetKey(sc.Name), encodeDatasetValue(e.id, e.created, js), nil))
	ac.datasets[sc.Name] = ne
	f.logger.Debug("forecast configuration set", "dataset", sc.Name, "raft_index", index)
	return nil
}

// ForecastApplyResult is the FSM's response to a forecast_results entry.
type ForecastApplyResult struct {
	// Stored counts the forecasts written; Stale those ignored because a
	// newer forecast was stored; Unknown those of unknown series.
	Stored, Stale, Unknown int
	// Cleared counts the dirty marks the results answered.
	Cleared int
}

// applyForecastResults stores a batch of forecasts. Response:
// *ForecastApplyResult, or an error wrapping ErrUnknownDataset (also when
// the dataset was re-created since the results were computed).
func (f *FSM) applyForecastResults(ac *applyCtx, index uint64, h, payload []byte) any {
	var hdr forecastResultsHeader
	if err := decodeHeader(h, &hdr); err != nil {
		divergence(CmdForecastResults, index, err)
	}
	e := ac.dataset(hdr.Dataset)
	if e == nil || e.id != hdr.DSID {
		return fmt.Errorf("%w: %q (incarnation %d)", ErrUnknownDataset, hdr.Dataset, hdr.DSID)
	}
	// Validate the whole entry first so a malformed one stores nothing.
	if err := decodeForecastResults(payload, func(rec []byte) error {
		_, err := decodeSeriesForecast(rec)
		return err
	}); err != nil {
		return fmt.Errorf("forecast results at index %d: %w", index, err)
	}
	w := ac.forecastWork()
	ac.materialize(e)
	res := &ForecastApplyResult{}
	var cleared []clearedMark
	_ = decodeForecastResults(payload, func(rec []byte) error {
		sid := binary.BigEndian.Uint64(rec[1:])
		di, _ := recordDataIndex(rec)
		if !ac.seriesKnown(e, sid) {
			res.Unknown++
			return nil
		}
		ref := seriesRef{e.id, sid}
		if prev, ok := ac.resultIndex(ref); ok && prev > di {
			res.Stale++
			return nil
		}
		must(ac.b.Set(forecastKey(e.id, sid), rec, nil))
		w.results[ref] = di
		res.Stored++
		if d, ok := ac.dirtyIndex(e, ref); ok && d <= di {
			ac.setDirty(ref, dirtyMark{})
			cleared = append(cleared, clearedMark{sid, di})
			res.Cleared++
		}
		return nil
	})
	ac.logClears(e, index, cleared)
	return res
}

// applyForecastRefresh marks series dirty and records the dataset's refresh
// index. Response: nil or an error wrapping ErrUnknownDataset.
func (f *FSM) applyForecastRefresh(ac *applyCtx, index uint64, h, payload []byte) any {
	var hdr forecastRefreshHeader
	if err := decodeHeader(h, &hdr); err != nil {
		divergence(CmdForecastRefresh, index, err)
	}
	if len(payload) != 8*hdr.Count {
		divergence(CmdForecastRefresh, index, fmt.Errorf("%d payload bytes for %d series", len(payload), hdr.Count))
	}
	e := ac.dataset(hdr.Dataset)
	if e == nil {
		return fmt.Errorf("%w: %q", ErrUnknownDataset, hdr.Dataset)
	}
	ac.materialize(e)
	var v [8]byte
	putU64(v[:], index)
	must(ac.b.Set(refreshIndexKey(e.id), v[:], nil))
	mark := func(sid uint64) {
		if !ac.seriesKnown(e, sid) {
			return
		}
		ac.setDirty(seriesRef{e.id, sid}, dirtyMark{index: index})
	}
	defer ac.checkpointDirty(e, index)
	if hdr.Count == 0 {
		for sid := range e.known.All {
			mark(sid)
		}
		for ref := range ac.series {
			if ref.dsid == e.id {
				mark(ref.sid)
			}
		}
		return nil
	}
	for i := range hdr.Count {
		mark(binary.BigEndian.Uint64(payload[8*i:]))
	}
	return nil
}

// Forecast returns the stored forecast of one series; ok is false when the
// series has none yet. Unknown datasets return ErrUnknownDataset.
func (s *Store) Forecast(dataset string, seriesID uint64) (fc *SeriesForecast, ok bool, err error) {
	e := s.dataset(dataset)
	if e == nil {
		return nil, false, fmt.Errorf("%w: %q", ErrUnknownDataset, dataset)
	}
	v, closer, err := s.db.Get(forecastKey(e.id, seriesID))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, fmt.Errorf("read forecast: %w", err)
	}
	defer closer.Close()
	fc, err = decodeSeriesForecast(v)
	if err != nil {
		return nil, false, fmt.Errorf("read forecast of series %016x: %w", seriesID, err)
	}
	return fc, true, nil
}

// ForecastCount returns the number of series of dataset with a stored
// forecast and the number still marked dirty (awaiting a refresh).
func (s *Store) ForecastCount(ctx context.Context, dataset string) (forecasts, dirty int, err error) {
	e := s.dataset(dataset)
	if e == nil {
		return 0, 0, fmt.Errorf("%w: %q", ErrUnknownDataset, dataset)
	}
	lo, hi := dsRange(prefixForecast, e.id)
	if err := s.scan(ctx, lo, hi, func(_, _ []byte) (bool, error) { forecasts++; return true, nil }); err != nil {
		return 0, 0, err
	}
	e.dirty.mu.Lock()
	dirty = e.dirty.marks.Len()
	e.dirty.mu.Unlock()
	return forecasts, dirty, nil
}

// DirtyMark is one series awaiting a forecast refresh.
type DirtyMark struct {
	SeriesID uint64
	// Index is the Raft index of the newest data (or refresh request) for
	// the series; results must carry it as their DataIndex.
	Index uint64
	// TxID is the ingest transaction that set the mark ("" for a forced
	// refresh); an older transaction's mark is overwritten, so only the
	// newest transaction of a series gets a forecast tracking block.
	TxID string
}

// DirtySeries calls fn for every dirty series of the dataset in series-id
// order until fn returns false. It also returns the dataset's refresh index
// (0 when no refit was ever forced) and its id (incarnation). After a
// restart it waits for the Raft replay that restores the marks held only
// in memory, and answers ErrReplaying if that takes too long.
func (s *Store) DirtySeries(ctx context.Context, dataset string, fn func(DirtyMark) bool) (refresh uint64, dsid uint32, err error) {
	e := s.dataset(dataset)
	if e == nil {
		return 0, 0, fmt.Errorf("%w: %q", ErrUnknownDataset, dataset)
	}
	if err := s.waitReplayed(ctx); err != nil {
		return 0, 0, err
	}
	if v, closer, err := s.db.Get(refreshIndexKey(e.id)); err == nil {
		if len(v) >= 8 {
			refresh = binary.BigEndian.Uint64(v)
		}
		_ = closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return 0, 0, fmt.Errorf("read refresh index: %w", err)
	}
	for i, m := range e.dirty.sortedMarks() {
		if i%1024 == 0 {
			if err = ctx.Err(); err != nil {
				break
			}
		}
		if !fn(m) {
			break
		}
	}
	return refresh, e.id, err
}

// History reads the measures of the given series of dataset in period
// order, one value per period of the dataset frequency from the first to the
// last observation; missing periods count as 0 (no demand recorded). For
// series i, fn gets its values (valid only during the call; fn may keep a
// sub-slice only by copying) and the stream.PeriodIndex of the last
// period. Series without observations are skipped.
func (s *Store) History(ctx context.Context, dataset string, ids []uint64, fn func(i int, values []float64, lastPeriod int64) error) (err error) {
	e := s.dataset(dataset)
	if e == nil {
		return fmt.Errorf("%w: %q", ErrUnknownDataset, dataset)
	}
	if err := s.waitReplayed(ctx); err != nil {
		return err
	}
	freq := e.schema.Frequency
	buf := make([]float64, 0, 256)
	var body, tmp []byte
	for i, sid := range ids {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		s.stage.mu.RLock()
		body, tmp, err = s.seriesBody(e, sid, body, tmp)
		s.stage.mu.RUnlock()
		if err != nil {
			return fmt.Errorf("series %016x: %w", sid, err)
		}
		buf = buf[:0]
		var first, prev int64
		have := false
		for rest := body; len(rest) > 0; {
			ce, r, ok := nextChunkEntry(rest)
			if !ok {
				return fmt.Errorf("series %016x: %w", sid, errCorruptChunk)
			}
			rest = r
			m, _ := obsMeasure(ce.val)
			pi := stream.PeriodIndex(unbiasPeriod(ce.period), freq)
			if !have {
				first, prev, have = pi, pi, true
			} else {
				if gap := pi - prev - 1; gap > 0 {
					if pi-first > math.MaxInt32 {
						return fmt.Errorf("series %016x spans too many periods", sid)
					}
					for range gap {
						buf = append(buf, 0)
					}
				}
				prev = pi
			}
			buf = append(buf, m)
		}
		if !have {
			continue
		}
		if err := fn(i, buf, prev); err != nil {
			return err
		}
	}
	return nil
}
