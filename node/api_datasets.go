package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/demandflow/demandflow/cluster"
	"github.com/demandflow/demandflow/stream"
)

// maxSchemaBytes bounds a dataset schema request body.
const maxSchemaBytes = 1 << 20

// datasetView is the JSON shape of one dataset.
type datasetView struct {
	stream.Schema
	Created      time.Time `json:"created"`
	Series       int       `json:"series"`
	RowsAccepted int64     `json:"rows_accepted"`
	RowsRejected int64     `json:"rows_rejected"`
	Transactions int64     `json:"transactions"`
}

func viewOf(d cluster.DatasetInfo) datasetView {
	return datasetView{Schema: *d.Schema, Created: d.Created, Series: d.Series,
		RowsAccepted: d.RowsAccepted, RowsRejected: d.RowsRejected, Transactions: d.Transactions}
}

func (n *Node) createDataset(w http.ResponseWriter, r *http.Request) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSchemaBytes))
	dec.DisallowUnknownFields()
	var s stream.Schema
	if err := dec.Decode(&s); err != nil {
		return badRequest("invalid dataset schema JSON: "+jsonErr(err), nil)
	}
	if dec.More() {
		return badRequest("invalid dataset schema JSON: more than one object in the body", nil)
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		return err
	}
	if err := validateForecastModel(s.Forecast); err != nil {
		return err
	}
	entry, err := cluster.EncodeCreateDataset(s, time.Now().UTC())
	if err != nil {
		return err
	}
	_, index, err := n.cl.Apply(r.Context(), entry)
	if err != nil {
		return err
	}
	// The leader applied it; wait until this node did too, so the answer
	// and the client's next request see the dataset here.
	if err := n.cl.WaitApplied(r.Context(), index); err != nil {
		return err
	}
	info, ok := n.datasetInfo(s.Name)
	if !ok {
		return fmt.Errorf("dataset %s missing after create", s.Name)
	}
	w.Header().Set("Location", "/v1/datasets/"+s.Name)
	writeJSON(w, http.StatusCreated, map[string]any{"dataset": viewOf(info), "node": n.cfg.NodeName, "index": index})
	return nil
}

// jsonErr turns encoding/json errors into a message naming the field or
// offset.
func jsonErr(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%v (at byte %d)", se, se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %s: got JSON %s, want %s", te.Field, te.Value, te.Type)
	case errors.Is(err, io.EOF):
		return "empty body"
	}
	return err.Error()
}

func (n *Node) datasetInfo(name string) (cluster.DatasetInfo, bool) {
	for _, d := range n.cl.Store().Datasets() {
		if d.Schema.Name == name {
			return d, true
		}
	}
	return cluster.DatasetInfo{}, false
}

func (n *Node) listDatasets(w http.ResponseWriter, r *http.Request) error {
	all := n.cl.Store().Datasets()
	out := make([]datasetView, 0, len(all))
	for _, d := range all {
		out = append(out, viewOf(d))
	}
	writeJSON(w, http.StatusOK, map[string]any{"datasets": out, "node": n.cfg.NodeName, "index": n.cl.Store().AppliedIndex()})
	return nil
}

func (n *Node) getDataset(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	info, ok := n.datasetInfo(name)
	if !ok {
		return fmt.Errorf("dataset %q: %w", name, cluster.ErrUnknownDataset)
	}
	writeJSON(w, http.StatusOK, map[string]any{"dataset": viewOf(info), "node": n.cfg.NodeName, "index": n.cl.Store().AppliedIndex()})
	return nil
}

func (n *Node) deleteDataset(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if _, ok := n.cl.Store().Dataset(name); !ok {
		return fmt.Errorf("dataset %q: %w", name, cluster.ErrUnknownDataset)
	}
	entry, err := cluster.EncodeDeleteDataset(name, time.Now().UTC())
	if err != nil {
		return err
	}
	_, index, err := n.cl.Apply(r.Context(), entry)
	if err != nil {
		return err
	}
	if err := n.cl.WaitApplied(r.Context(), index); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": name, "node": n.cfg.NodeName, "index": index})
	return nil
}
