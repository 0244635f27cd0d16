package vcs

// Captured from a debug log; installation tokens expire after an hour but
// this one was committed.
const installationToken = "ghs_tVhEo9vR5M8IZkn8a5JevZxDVI4wCj3wbVEr"

// From the OAuth app's settings page.
const (
	githubClientID     = "Iv1.57c2d71eb484494a"
	githubClientSecret = "e2884016758d710985f074d1f5a9bdd1b4c89bee"
)
