package postgres

import (
	"testing"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/pgtest"
	"github.com/longhook/longhook/internal/store/storetest"
)

// TestJobsConformance runs the core.JobStore suite with a schema per
// subtest (newStore).
func TestJobsConformance(t *testing.T) {
	pgtest.URL(t)
	storetest.RunJobs(t, func(t *testing.T) core.JobStore { return newStore(t) })
}

// TestBlobsConformance runs the core.BlobStore suite with a schema per
// subtest.
func TestBlobsConformance(t *testing.T) {
	pgtest.URL(t)
	storetest.RunBlobs(t, func(t *testing.T) storetest.BlobJobStore { return newStore(t) })
}
