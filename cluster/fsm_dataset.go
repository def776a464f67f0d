package cluster

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/demandflow/demandflow/stream"
)

// applyCreateDataset creates a dataset with a new, never reused id.
// Response: nil, or an error wrapping ErrDatasetExists or
// stream.ErrInvalidSchema.
func (f *FSM) applyCreateDataset(ac *applyCtx, index uint64, h []byte) any {
	var hdr createDatasetHeader
	if err := decodeHeader(h, &hdr); err != nil {
		divergence(CmdCreateDataset, index, err)
	}
	var sc stream.Schema
	if err := json.Unmarshal(hdr.Schema, &sc); err != nil {
		divergence(CmdCreateDataset, index, err)
	}
	sc.Normalize()
	if err := sc.Validate(); err != nil {
		return err
	}
	if ac.dataset(sc.Name) != nil {
		return fmt.Errorf("%w: %q", ErrDatasetExists, sc.Name)
	}
	js, err := json.Marshal(&sc)
	if err != nil {
		panic(fmt.Sprintf("cluster: fsm: encode schema: %v", err))
	}
	e := &dsEntry{id: ac.nextID, schema: &sc, created: time.Unix(0, hdr.At).UTC(), dirty: newDirtyState()}
	ac.nextID++
	ac.nextIDDirty = true
	must(ac.b.Set(datasetKey(sc.Name), encodeDatasetValue(e.id, e.created, js), nil))
	ac.datasets[sc.Name] = e
	ac.statsOf(e) // persist zero counters
	f.logger.Debug("dataset created", "dataset", sc.Name, "raft_index", index)
	return nil
}

// applyDeleteDataset drops a dataset and every key scoped by its id with one
// DeleteRange per table. Response: nil or an error wrapping
// ErrUnknownDataset.
func (f *FSM) applyDeleteDataset(ac *applyCtx, index uint64, h []byte) any {
	var hdr deleteDatasetHeader
	if err := decodeHeader(h, &hdr); err != nil {
		divergence(CmdDeleteDataset, index, err)
	}
	e := ac.dataset(hdr.Name)
	if e == nil {
		return fmt.Errorf("%w: %q", ErrUnknownDataset, hdr.Name)
	}
	for _, p := range datasetTables {
		lo, hi := dsRange(p, e.id)
		must(ac.b.DeleteRange(lo, hi, nil))
	}
	must(ac.b.Delete(datasetKey(hdr.Name), nil))
	ac.datasets[hdr.Name] = nil
	delete(ac.stats, e.id)
	if ac.dropped == nil {
		ac.dropped = map[uint32]bool{}
	}
	ac.dropped[e.id] = true
	f.logger.Debug("dataset deleted", "dataset", hdr.Name, "raft_index", index)
	return nil
}
