package snapshot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ClusterRegistryKey is the cluster registry: the database's clusters
// (datacenters) and which of them are critical. The control plane keeps it
// (akutan backup clusters, and the add-dc and remove-dc procedures), and
// the truncation coordinator reads the critical ones from it on every
// plan, so no list of clusters is edited by hand: a cluster being added is
// registered critical before its views are counted on, and one being
// retired is marked non-critical before its servers go.
const ClusterRegistryKey = "clusters.json"

// ClusterRegistry is the registry's content.
type ClusterRegistry struct {
	Format   int            `json:"format"`
	Clusters []ClusterEntry `json:"clusters"`
}

// ClusterEntry is one cluster of the registry.
type ClusterEntry struct {
	Name string `json:"name"`
	// Critical clusters must have a checkpoint at every point below an
	// index before the log's prefix below it may be discarded.
	Critical bool `json:"critical"`
}

// ErrUnknownCluster: the registry has no cluster of that name.
var ErrUnknownCluster = errors.New("no such cluster in the registry")

// Critical returns the critical clusters' names, sorted.
func (r *ClusterRegistry) Critical() []string {
	var out []string
	for _, c := range r.Clusters {
		if c.Critical {
			out = append(out, c.Name)
		}
	}
	slices.Sort(out)
	return out
}

// Set adds the cluster or changes whether it is critical; ErrNoChange if
// it is already so.
func (r *ClusterRegistry) Set(name string, critical bool) error {
	if err := checkClusterName(name); err != nil {
		return err
	}
	for i := range r.Clusters {
		if r.Clusters[i].Name == name {
			if r.Clusters[i].Critical == critical {
				return ErrNoChange
			}
			r.Clusters[i].Critical = critical
			return nil
		}
	}
	r.Clusters = append(r.Clusters, ClusterEntry{Name: name, Critical: critical})
	slices.SortFunc(r.Clusters, func(a, b ClusterEntry) int { return strings.Compare(a.Name, b.Name) })
	return nil
}

// Remove drops a cluster that is no longer critical: a critical cluster
// must be marked non-critical first, so that the coordinator stops
// counting on it before it goes. ErrNoChange if it is not registered.
func (r *ClusterRegistry) Remove(name string) error {
	i := slices.IndexFunc(r.Clusters, func(c ClusterEntry) bool { return c.Name == name })
	if i < 0 {
		return ErrNoChange
	}
	if r.Clusters[i].Critical {
		return fmt.Errorf("cluster %s is critical: mark it non-critical before removing it", name)
	}
	r.Clusters = slices.Delete(r.Clusters, i, i+1)
	return nil
}

func checkClusterName(name string) error {
	if name == "" || len(name) > 64 || strings.ContainsAny(name, "/ \t\n,") {
		return fmt.Errorf("cluster name %q: want 1 to 64 characters, no '/', ',' or spaces", name)
	}
	return nil
}

func (r *ClusterRegistry) validate() error {
	seen := map[string]bool{}
	for _, c := range r.Clusters {
		if err := checkClusterName(c.Name); err != nil {
			return fmt.Errorf("%s: %v: %w", ClusterRegistryKey, err, ErrCorrupt)
		}
		if seen[c.Name] {
			return fmt.Errorf("%s: cluster %s twice: %w", ClusterRegistryKey, c.Name, ErrCorrupt)
		}
		seen[c.Name] = true
	}
	return nil
}

// LoadClusterRegistry reads the registry. An absent registry is empty
// (with ETag ""): a database whose control plane never registered a
// cluster; callers that need critical clusters then say so.
func LoadClusterRegistry(ctx context.Context, s Store) (*ClusterRegistry, string, error) {
	r := &ClusterRegistry{Format: CatalogFormat}
	etag, err := loadDoc(ctx, s, ClusterRegistryKey, r)
	if err == nil {
		err = checkFormat(ClusterRegistryKey, r.Format)
	}
	if err == nil {
		err = r.validate()
	}
	return r, etag, err
}

// UpdateClusterRegistry applies fn to the registry and writes it back with
// a conditional put, as UpdateLogCatalog does.
func UpdateClusterRegistry(ctx context.Context, s Store, fn func(*ClusterRegistry) error) (*ClusterRegistry, error) {
	return update(ctx, s, ClusterRegistryKey, LoadClusterRegistry, fn)
}
