// Package ctrd checkpoints a Docker container through the engine's own
// containerd, with CRIU writing its images straight into a directory of
// ckpt's store.
//
// Docker's checkpoint API has containerd put CRIU's images into its content
// store (CRIU → tar → content store → read back → untar into the checkpoint
// directory): three extra copies of the whole memory (moby issue 40644). A
// task checkpoint that names an image path skips all of them: containerd
// hands the path to the runtime shim, runc has CRIU dump there, and nothing
// is committed to the content store. Docker learns of the task's exit as
// after its own checkpoint (exit 137) and starts the container from those
// images as from its own (docker start --checkpoint).
package ctrd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/runc/options"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Namespace is the containerd namespace Docker keeps its containers in.
const Namespace = "moby"

// Sockets are where Docker's containerd listens: the one dockerd starts
// itself, then a system containerd (dockerd --containerd).
var Sockets = []string{"/var/run/docker/containerd/containerd.sock", "/run/containerd/containerd.sock"}

// ErrUnavailable is returned when no containerd holding the container's
// task can be reached: the caller uses the engine's API instead.
var ErrUnavailable = errors.New("the engine's containerd cannot be reached")

// checkpointOptionsURL is the type of runc's checkpoint options, without the
// type.googleapis.com/ prefix: containerd 1.6's shims (gogo typeurl) only
// know the bare name, newer ones both.
const checkpointOptionsURL = "containerd.runc.v1.CheckpointOptions"

// Checkpoint has container id's task checkpointed by CRIU into imageDir
// (created if missing); with exit the task is stopped after the dump, else
// it runs on. CRIU's log is where the engine's own checkpoint leaves it
// (criu-dump.log in the task's bundle), and a failure names it as the
// engine's does. It returns ErrUnavailable, wrapped, when no reachable
// containerd has the task.
func Checkpoint(ctx context.Context, id, imageDir string, exit bool) error {
	conn, err := dial(ctx, id)
	if err != nil {
		return err
	}
	defer conn.Close()
	opts, err := proto.Marshal(&options.CheckpointOptions{Exit: exit, ImagePath: imageDir})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(imageDir, 0o700); err != nil {
		return err
	}
	_, err = tasks.NewTasksClient(conn).Checkpoint(nsContext(ctx), &tasks.CheckpointTaskRequest{
		ContainerID: id,
		Options:     &anypb.Any{TypeUrl: checkpointOptionsURL, Value: opts},
	})
	if err != nil {
		return fmt.Errorf("containerd could not checkpoint %.12s: %s", id, status.Convert(err).Message())
	}
	return nil
}

// dial connects to the first socket whose containerd has a task for id.
func dial(ctx context.Context, id string) (*grpc.ClientConn, error) {
	var tried []string
	for _, sock := range Sockets {
		if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
			continue
		}
		conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			tried = append(tried, sock+": "+err.Error())
			continue
		}
		gctx, cancel := context.WithTimeout(nsContext(ctx), 5*time.Second)
		_, err = tasks.NewTasksClient(conn).Get(gctx, &tasks.GetRequest{ContainerID: id})
		cancel()
		if err == nil {
			return conn, nil
		}
		conn.Close()
		if status.Code(err) == codes.NotFound {
			tried = append(tried, sock+": no task "+shortID(id))
		} else {
			tried = append(tried, sock+": "+status.Convert(err).Message())
		}
	}
	if len(tried) == 0 {
		return nil, fmt.Errorf("%w: no socket at %s", ErrUnavailable, strings.Join(Sockets, " or "))
	}
	return nil, fmt.Errorf("%w: %s", ErrUnavailable, strings.Join(tried, "; "))
}

func nsContext(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "containerd-namespace", Namespace)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
