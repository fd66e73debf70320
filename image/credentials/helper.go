package credentials

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// HelperPrefix is the prefix of credential helper executables: the helper
// "pass" is the program docker-credential-pass, looked up in $PATH.
const HelperPrefix = "docker-credential-"

// helperTokenUser is the user name under which docker stores an identity
// token in a credential helper.
const helperTokenUser = "<token>"

// helperWaitDelay bounds how long a helper's output is awaited after it is
// killed because its context ended.
const helperWaitDelay = 5 * time.Second

// errHelperNotFound is a helper's "credentials not found" answer.
var errHelperNotFound = errors.New("credentials not found in credential helper")

// helperMessage is the JSON a helper reads on "store" and prints on "get".
type helperMessage struct {
	ServerURL string `json:"ServerURL"`
	Username  string `json:"Username"`
	Secret    string `json:"Secret"`
}

// helperGet asks helper for the credentials of serverURL.
func helperGet(ctx context.Context, helper, serverURL string) (Credential, error) {
	out, err := runHelper(ctx, helper, "get", []byte(serverURL))
	if err != nil {
		return Credential{}, err
	}
	var msg helperMessage
	if err := json.Unmarshal(out, &msg); err != nil {
		return Credential{}, fmt.Errorf("%s%s get: decode output: %w", HelperPrefix, helper, err)
	}
	if msg.Username == helperTokenUser {
		return Credential{IdentityToken: msg.Secret}, nil
	}
	return Credential{Username: msg.Username, Secret: msg.Secret}, nil
}

// helperStore hands cred for serverURL to helper. An identity token is
// stored as docker does: user "<token>", the token as the secret.
func helperStore(ctx context.Context, helper, serverURL string, cred Credential) error {
	msg := helperMessage{ServerURL: serverURL, Username: cred.Username, Secret: cred.Secret}
	if cred.IdentityToken != "" {
		msg.Username, msg.Secret = helperTokenUser, cred.IdentityToken
	}
	in, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("%s%s store: %w", HelperPrefix, helper, err)
	}
	_, err = runHelper(ctx, helper, "store", in)
	return err
}

// helperErase removes the credentials of serverURL from helper.
func helperErase(ctx context.Context, helper, serverURL string) error {
	_, err := runHelper(ctx, helper, "erase", []byte(serverURL))
	return err
}

// runHelper runs `docker-credential-<helper> <action>` with stdin as its
// input and returns its standard output. A failure whose message says the
// credentials were not found wraps errHelperNotFound.
func runHelper(ctx context.Context, helper, action string, stdin []byte) ([]byte, error) {
	// The name comes from a file: never let it name a path.
	if helper == "" || strings.ContainsAny(helper, `/\`) || strings.HasPrefix(helper, ".") {
		return nil, fmt.Errorf("invalid credential helper name %q", helper)
	}
	prog := HelperPrefix + helper
	cmd := exec.CommandContext(ctx, prog, action)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = helperWaitDelay
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: %w", prog, action, ctx.Err())
		}
		// Helpers print their error message on stdout (docker reads it
		// there); fall back to stderr for those that do not.
		msg := strings.TrimSpace(stdout.String())
		if msg == "" {
			msg = strings.TrimSpace(stderr.String())
		}
		if strings.Contains(strings.ToLower(msg), "credentials not found") {
			return nil, fmt.Errorf("%s %s: %s: %w", prog, action, msg, errHelperNotFound)
		}
		if msg != "" {
			return nil, fmt.Errorf("%s %s: %s: %w", prog, action, msg, err)
		}
		return nil, fmt.Errorf("%s %s: %w", prog, action, err)
	}
	return stdout.Bytes(), nil
}
