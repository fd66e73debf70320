package main

import (
	"context"
	"time"

	"github.com/berth-engine/berth/image"
)

// imageInspect is docker's image inspect object (API 1.41 shape). Field
// names are docker's too, because --format templates use them: {{.Id}}.
type imageInspect struct {
	Id              string            `json:"Id"`
	RepoTags        []string          `json:"RepoTags"`
	RepoDigests     []string          `json:"RepoDigests"`
	Parent          string            `json:"Parent"`
	Comment         string            `json:"Comment"`
	Created         string            `json:"Created"`
	Container       string            `json:"Container"`
	ContainerConfig inspectConfig     `json:"ContainerConfig"`
	DockerVersion   string            `json:"DockerVersion"`
	Author          string            `json:"Author"`
	Config          inspectConfig     `json:"Config"`
	Architecture    string            `json:"Architecture"`
	Variant         string            `json:"Variant,omitempty"`
	Os              string            `json:"Os"`
	OsVersion       string            `json:"OsVersion,omitempty"`
	Size            int64             `json:"Size"`
	VirtualSize     int64             `json:"VirtualSize"`
	GraphDriver     graphDriver       `json:"GraphDriver"`
	RootFS          rootFS            `json:"RootFS"`
	Metadata        map[string]string `json:"Metadata"`
}

type inspectConfig struct {
	Hostname     string              `json:"Hostname"`
	Domainname   string              `json:"Domainname"`
	User         string              `json:"User"`
	AttachStdin  bool                `json:"AttachStdin"`
	AttachStdout bool                `json:"AttachStdout"`
	AttachStderr bool                `json:"AttachStderr"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Tty          bool                `json:"Tty"`
	OpenStdin    bool                `json:"OpenStdin"`
	StdinOnce    bool                `json:"StdinOnce"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	Healthcheck  *image.HealthConfig `json:"Healthcheck,omitempty"`
	ArgsEscaped  bool                `json:"ArgsEscaped,omitempty"`
	Image        string              `json:"Image"`
	Volumes      map[string]struct{} `json:"Volumes"`
	WorkingDir   string              `json:"WorkingDir"`
	Entrypoint   []string            `json:"Entrypoint"`
	OnBuild      []string            `json:"OnBuild"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	Shell        []string            `json:"Shell,omitempty"`
}

type graphDriver struct {
	Data map[string]string `json:"Data"`
	Name string            `json:"Name"`
}

type rootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers"`
}

func inspectImage(ctx context.Context, store *image.Store, img *image.Image) (*imageInspect, error) {
	cfg, err := store.Config(ctx, img)
	if err != nil {
		return nil, err
	}
	v := &imageInspect{
		Id:            img.ID.String(),
		RepoTags:      []string{},
		RepoDigests:   []string{},
		Comment:       cfg.Comment,
		Container:     cfg.Container,
		DockerVersion: cfg.DockerVersion,
		Author:        cfg.Author,
		Architecture:  cfg.Architecture,
		Variant:       cfg.Variant,
		Os:            cfg.OS,
		OsVersion:     cfg.OSVersion,
		Size:          img.Size,
		VirtualSize:   img.Size,
		RootFS:        rootFS{Type: "layers"},
		Metadata:      map[string]string{},
	}
	if cfg.Created != nil {
		v.Created = cfg.Created.UTC().Format(time.RFC3339Nano)
	}
	if !img.LastTagTime.IsZero() {
		v.Metadata["LastTagTime"] = img.LastTagTime.Format(time.RFC3339Nano)
	} else {
		v.Metadata["LastTagTime"] = "0001-01-01T00:00:00Z"
	}
	for _, n := range img.Names {
		v.RepoTags = append(v.RepoTags, familiarName(n.Ref))
	}
	for _, rd := range img.RepoDigests {
		v.RepoDigests = append(v.RepoDigests, familiarName(rd))
	}
	c := cfg.Config
	v.Config = inspectConfig{
		User: c.User, ExposedPorts: c.ExposedPorts, Env: c.Env, Cmd: c.Cmd, Healthcheck: c.Healthcheck,
		ArgsEscaped: c.ArgsEscaped, Volumes: c.Volumes, WorkingDir: c.WorkingDir, Entrypoint: c.Entrypoint,
		OnBuild: c.OnBuild, Labels: c.Labels, StopSignal: c.StopSignal, Shell: c.Shell,
	}
	for _, d := range cfg.RootFS.DiffIDs {
		v.RootFS.Layers = append(v.RootFS.Layers, d.String())
	}
	v.GraphDriver = graphDriver{Name: store.Snapshotter().Driver(), Data: map[string]string{}}
	return v, nil
}
