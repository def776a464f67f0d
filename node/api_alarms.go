package node

import (
	"net/http"

	"github.com/demandflow/demandflow/cluster"
)

// alarmsView is the JSON body of GET /v1/alarms.
type alarmsView struct {
	// Active are the replicated active alarms, oldest raised first; every
	// node that has applied Index reports the same list.
	Active []cluster.Alarm `json:"active"`
	// History are the cleared alarms, most recently cleared first (at most
	// cluster.MaxAlarmHistory).
	History []cluster.Alarm `json:"history"`
	// Local are this node's own alarms that cannot be replicated, such as
	// quorum_lost on a node cut off from the majority.
	Local []cluster.Alarm `json:"local"`
	Node  string          `json:"node"`
	Index uint64          `json:"index"`
}

// alarms answers GET /v1/alarms with the replicated alarms (active and
// history) merged with this node's local ones. The index is read before the
// alarms, so the lists reflect at least that index.
func (n *Node) alarms(w http.ResponseWriter, r *http.Request) error {
	index := n.cl.Store().AppliedIndex()
	active, history, err := n.cl.Store().Alarms()
	if err != nil {
		return err
	}
	local := n.cl.LocalAlarms()
	v := alarmsView{Active: active, History: history, Local: local, Node: n.cfg.NodeName, Index: index}
	// Empty lists are [] in JSON, never null.
	for _, l := range []*[]cluster.Alarm{&v.Active, &v.History, &v.Local} {
		if *l == nil {
			*l = []cluster.Alarm{}
		}
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
