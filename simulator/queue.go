package simulator

import (
	"container/heap"
	"time"
)

// job is a piece of background work that Run starts at due: either moving a payment to
// its outcome or one callback attempt.
type job struct {
	due       time.Time
	sequence  uint64    // breaks ties in due, so jobs due together run in queue order
	paymentID string    // set for an outcome job
	delivery  *delivery // set for a callback attempt
}

// jobQueue is a min-heap of jobs ordered by due time, for container/heap.
type jobQueue struct {
	jobs         []*job
	lastSequence uint64
}

func (q *jobQueue) Len() int { return len(q.jobs) }

func (q *jobQueue) Less(i, j int) bool {
	a, b := q.jobs[i], q.jobs[j]
	if a.due.Equal(b.due) {
		return a.sequence < b.sequence
	}
	return a.due.Before(b.due)
}

func (q *jobQueue) Swap(i, j int) { q.jobs[i], q.jobs[j] = q.jobs[j], q.jobs[i] }

func (q *jobQueue) Push(x any) { q.jobs = append(q.jobs, x.(*job)) }

func (q *jobQueue) Pop() any {
	last := q.jobs[len(q.jobs)-1]
	q.jobs[len(q.jobs)-1] = nil
	q.jobs = q.jobs[:len(q.jobs)-1]
	return last
}

// pushJobLocked queues j and wakes the scheduler. The caller holds s.mu.
func (s *Server) pushJobLocked(j *job) {
	s.jobs.lastSequence++
	j.sequence = s.jobs.lastSequence
	heap.Push(&s.jobs, j)

	select {
	case s.wake <- struct{}{}:
	default: // A wake-up is already pending.
	}
}

// pushJob queues j and wakes the scheduler.
func (s *Server) pushJob(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushJobLocked(j)
}

// popDueJobs removes and returns the jobs due at now, and returns the time until the
// next job, or -1 when the queue is empty.
func (s *Server) popDueJobs(now time.Time) ([]*job, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()

	var due []*job
	for s.jobs.Len() > 0 {
		next := s.jobs.jobs[0]
		if next.due.After(now) {
			return due, next.due.Sub(now)
		}
		due = append(due, heap.Pop(&s.jobs).(*job))
	}
	return due, -1
}
