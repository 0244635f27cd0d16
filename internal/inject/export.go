package inject

import (
	"errors"
	"io"
)

// Export writes values in format f, as tokenward export does. For every
// format but github, the output goes to the file output (written atomically,
// mode 0600) or, when output is "", to stdout. For FormatGitHub, output is the
// $GITHUB_ENV file, appended to, and stdout receives the ::add-mask:: lines,
// written first so the runner masks the values before anything can log them.
func Export(f Format, values map[string]string, output string, stdout io.Writer) error {
	if f == FormatGitHub {
		if output == "" {
			return errors.New("export github: no $GITHUB_ENV file (not running in GitHub Actions?); pass --output")
		}
		env, masks, err := EncodeGitHub(values)
		if err != nil {
			return err
		}
		if _, err := stdout.Write(masks); err != nil {
			return err
		}
		return AppendFile(output, env)
	}
	data, err := Encode(f, values)
	if err != nil {
		return err
	}
	if output == "" {
		_, err := stdout.Write(data)
		return err
	}
	return WriteFileAtomic(output, data)
}
