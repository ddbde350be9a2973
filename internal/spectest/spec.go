package spectest

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// specFiles holds the vendored spec data; see spec/README.md.
//
//go:embed spec
var specFiles embed.FS

// baseURL is where the vendored files are registered with the schema
// compiler: spec/api/client-server/registration.yaml becomes
// file:///spec/api/client-server/registration.yaml, so relative $refs such
// as definitions/auth_response.yaml or
// ../../event-schemas/schema/core-event-schema/... resolve as in the spec
// repository.
const baseURL = "file:///spec/"

// apiDirs are the APIs whose operations are indexed.
var apiDirs = []string{"api/client-server", "api/server-server"}

// httpMethods are the OpenAPI path item keys that are operations.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// standardErrorURL names the schema of the Client-Server API's "standard
// error response" (spec v1.13, Client-Server API, "Standard error response"):
// "the keys error and errcode MUST always be present". The spec's own
// definitions/errors/error.yaml only requires errcode, hence this stricter
// local schema.
const standardErrorURL = "file:///spectest/standard-error.json"

var standardErrorSchema = map[string]any{
	"type":     "object",
	"required": []any{"errcode", "error"},
	"properties": map[string]any{
		"errcode": map[string]any{"type": "string"},
		"error":   map[string]any{"type": "string"},
	},
}

// uiaSchemaURL is the body of a User-Interactive Authentication 401 (spec
// v1.13, Client-Server API, "User-interactive authentication API"). It has
// flows instead of errcode, and errcode/error only after a failed stage.
const uiaSchemaURL = baseURL + "api/client-server/definitions/auth_response.yaml"

// spec is the parsed, indexed vendored spec. Schemas compile lazily.
type spec struct {
	docs map[string]any // by URL, JSON-compatible values
	ops  []*operation

	mu       sync.Mutex // guards compiler and compiled
	compiler *jsonschema.Compiler
	compiled map[string]compiledSchema
}

type compiledSchema struct {
	schema *jsonschema.Schema
	err    error
}

// operation is one OpenAPI operation, with its path template made absolute
// with the file's servers basePath.
type operation struct {
	id       string
	method   string // upper case
	file     string // relative to spec/, e.g. api/client-server/registration.yaml
	template string // e.g. /_matrix/client/v3/profile/{userId}/displayname
	segments []segment
	// authenticated is set when the operation declares a security
	// requirement, so it may answer 401 for a missing or bad credential.
	authenticated bool
	// describesUIA is set when the description says the operation uses
	// User-Interactive Authentication, whether or not it documents the 401.
	describesUIA bool
	responses    map[string]*response // by status key: "200", "4XX", "default"
}

type segment struct {
	literal string
	param   string // set for a {param} segment
}

// response is one documented response of an operation.
type response struct {
	status string
	// doc and ptr locate the response object, after any $ref.
	doc, ptr string
	// json is set when the response documents an application/json body.
	json bool
	// schemaLoc is the compiler location of that body's schema, "" if none.
	schemaLoc string
	// uia is set when the schema is the User-Interactive Authentication
	// response rather than a standard error.
	uia bool
}

// statuses lists the documented status keys, sorted.
func (op *operation) statuses() []string {
	keys := make([]string, 0, len(op.responses))
	for k := range op.responses {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (op *operation) String() string {
	return fmt.Sprintf("%s %s (%s in %s)", op.method, op.template, op.id, op.file)
}

var loadSpec = sync.OnceValues(load)

// load parses every vendored file, registers it with a new compiler and
// indexes the operations of the APIs in apiDirs.
func load() (*spec, error) {
	s := &spec{
		docs:     map[string]any{},
		compiler: jsonschema.NewCompiler(),
		compiled: map[string]compiledSchema{},
	}
	// OpenAPI 3.1 schemas are JSON Schema 2020-12 plus annotation keywords
	// (example, x-*), which the compiler ignores as unknown keywords. Formats
	// stay annotations: the spec's formats (mx-user-id, ...) are not known to
	// the compiler and are not asserted.
	s.compiler.DefaultDraft(jsonschema.Draft2020)
	s.compiler.UseLoader(vendoredOnly{})

	err := fs.WalkDir(specFiles, "spec", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		ext := path.Ext(name)
		if d.IsDir() || (ext != ".yaml" && ext != ".json") {
			return nil
		}
		data, err := specFiles.ReadFile(name)
		if err != nil {
			return err
		}
		doc, err := parseYAML(data) // JSON is YAML
		if err != nil {
			return fmt.Errorf("spectest: parse %s: %w", name, err)
		}
		u := baseURL + strings.TrimPrefix(name, "spec/")
		s.docs[u] = doc
		return s.compiler.AddResource(u, doc)
	})
	if err != nil {
		return nil, fmt.Errorf("spectest: load vendored spec: %w", err)
	}
	if err := s.compiler.AddResource(standardErrorURL, standardErrorSchema); err != nil {
		return nil, fmt.Errorf("spectest: %w", err)
	}

	for _, dir := range apiDirs {
		names, err := fs.Glob(specFiles, "spec/"+dir+"/*.yaml")
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			if err := s.index(strings.TrimPrefix(name, "spec/")); err != nil {
				return nil, fmt.Errorf("spectest: index %s: %w", name, err)
			}
		}
	}
	return s, nil
}

// vendoredOnly makes a $ref to a file that is not vendored a compile error
// instead of a read from the local disk.
type vendoredOnly struct{}

func (vendoredOnly) Load(u string) (any, error) {
	return nil, fmt.Errorf("%s is not vendored under internal/spectest/spec", u)
}

// index adds the operations of one OpenAPI file.
func (s *spec) index(file string) error {
	docURL := baseURL + file
	doc, _ := s.docs[docURL].(map[string]any)
	basePath, err := basePath(doc)
	if err != nil {
		return err
	}
	paths, _ := doc["paths"].(map[string]any)
	for _, rawTemplate := range slices.Sorted(maps.Keys(paths)) { // stable order
		item, _ := paths[rawTemplate].(map[string]any)
		// inviting.yaml spells its path "/rooms/{roomId}/invite " with a
		// trailing space to keep it apart from the third-party invite
		// operation on the same method and path.
		template := basePath + strings.TrimSpace(rawTemplate)
		for _, method := range httpMethods {
			opDoc, ok := item[method].(map[string]any)
			if !ok {
				continue
			}
			op := &operation{
				method:    strings.ToUpper(method),
				file:      file,
				template:  template,
				segments:  parseTemplate(template),
				responses: map[string]*response{},
			}
			op.id, _ = opDoc["operationId"].(string)
			security, ok := opDoc["security"].([]any)
			if !ok {
				security, _ = doc["security"].([]any)
			}
			for _, req := range security {
				if req, _ := req.(map[string]any); len(req) > 0 {
					op.authenticated = true
				}
			}
			desc, _ := opDoc["description"].(string)
			op.describesUIA = strings.Contains(desc, "[User-Interactive Authentication API]")
			responses, _ := opDoc["responses"].(map[string]any)
			ptr := "/paths/" + escapePointer(rawTemplate) + "/" + method + "/responses/"
			for status := range responses {
				r, err := s.response(docURL, ptr+escapePointer(status))
				if err != nil {
					return fmt.Errorf("%s response %s: %w", op, status, err)
				}
				r.status = strings.ToUpper(status)
				op.responses[r.status] = r
			}
			s.ops = append(s.ops, op)
		}
	}
	return nil
}

// basePath returns the default of the basePath variable of the file's
// server, "{protocol}://{hostname}{basePath}" in every API file.
func basePath(doc map[string]any) (string, error) {
	servers, _ := doc["servers"].([]any)
	if len(servers) == 0 {
		return "", fmt.Errorf("no servers")
	}
	server, _ := servers[0].(map[string]any)
	serverURL, _ := server["url"].(string)
	vars, _ := server["variables"].(map[string]any)
	bp, _ := vars["basePath"].(map[string]any)
	def, ok := bp["default"].(string)
	if !ok || !strings.HasSuffix(serverURL, "{basePath}") {
		return "", fmt.Errorf("server url %q has no basePath default", serverURL)
	}
	return def, nil
}

// response resolves the response object at docURL#ptr, following a $ref to
// a components/responses entry, and locates its application/json schema.
func (s *spec) response(docURL, ptr string) (*response, error) {
	docURL, ptr, obj, err := s.deref(docURL, ptr)
	if err != nil {
		return nil, err
	}
	r := &response{doc: docURL, ptr: ptr}
	content, _ := obj["content"].(map[string]any)
	media, ok := content["application/json"].(map[string]any)
	if !ok {
		return r, nil
	}
	r.json = true
	schema, ok := media["schema"].(map[string]any)
	if !ok {
		return r, nil
	}
	r.schemaLoc = docURL + "#" + fragment(ptr+"/content/application~1json/schema")
	if ref, ok := schema["$ref"].(string); ok && len(schema) == 1 {
		target, err := resolveRef(docURL, ref)
		if err != nil {
			return nil, err
		}
		r.uia = target == uiaSchemaURL
	}
	return r, nil
}

// deref returns the object at docURL#ptr, following $refs (OpenAPI
// Reference Objects) until it reaches one without.
func (s *spec) deref(docURL, ptr string) (string, string, map[string]any, error) {
	for range 10 {
		obj, ok := lookup(s.docs[docURL], ptr).(map[string]any)
		if !ok {
			return "", "", nil, fmt.Errorf("%s#%s is not an object", docURL, ptr)
		}
		ref, ok := obj["$ref"].(string)
		if !ok {
			return docURL, ptr, obj, nil
		}
		target, err := resolveRef(docURL, ref)
		if err != nil {
			return "", "", nil, err
		}
		docURL, ptr, _ = strings.Cut(target, "#")
		if ptr, err = url.PathUnescape(ptr); err != nil {
			return "", "", nil, err
		}
		if _, ok := s.docs[docURL]; !ok {
			return "", "", nil, fmt.Errorf("$ref %q: %s is not vendored", ref, docURL)
		}
	}
	return "", "", nil, fmt.Errorf("%s#%s: too many $ref hops", docURL, ptr)
}

func resolveRef(docURL, ref string) (string, error) {
	base, err := url.Parse(docURL)
	if err != nil {
		return "", err
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("$ref %q: %w", ref, err)
	}
	return base.ResolveReference(r).String(), nil
}

// lookup evaluates a JSON pointer (RFC 6901) in doc; nil if it leads
// nowhere.
func lookup(doc any, ptr string) any {
	if ptr == "" {
		return doc
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = pointerUnescaper.Replace(tok)
		switch v := doc.(type) {
		case map[string]any:
			doc = v[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) {
				return nil
			}
			doc = v[i]
		default:
			return nil
		}
	}
	return doc
}

var (
	pointerEscaper   = strings.NewReplacer("~", "~0", "/", "~1")
	pointerUnescaper = strings.NewReplacer("~1", "/", "~0", "~")
)

func escapePointer(tok string) string { return pointerEscaper.Replace(tok) }

// fragment percent-encodes a JSON pointer for a URL fragment; the compiler
// decodes it again. Path keys have braces and, once, a trailing space.
func fragment(ptr string) string {
	toks := strings.Split(ptr, "/")
	for i, tok := range toks {
		toks[i] = url.PathEscape(tok)
	}
	return strings.Join(toks, "/")
}

// schema compiles the schema at loc once and caches the outcome.
func (s *spec) schema(loc string) (*jsonschema.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.compiled[loc]
	if !ok {
		c.schema, c.err = s.compiler.Compile(loc)
		s.compiled[loc] = c
	}
	return c.schema, c.err
}

// parseYAML decodes a YAML (or JSON) document into the values
// encoding/json produces with UseNumber: map[string]any, []any, string,
// json.Number, bool and nil. Mapping keys become strings, so the response
// key 200 is "200".
func parseYAML(data []byte) (any, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return nil, err
	}
	return convert(&n)
}

func convert(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return convert(n.Content[0])
	case yaml.AliasNode:
		return convert(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				return nil, fmt.Errorf("line %d: YAML merge keys are not supported", k.Line)
			}
			val, err := convert(v)
			if err != nil {
				return nil, err
			}
			m[k.Value] = val
		}
		return m, nil
	case yaml.SequenceNode:
		a := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := convert(c)
			if err != nil {
				return nil, err
			}
			a = append(a, val)
		}
		return a, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			err := n.Decode(&b)
			return b, err
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				return nil, err
			}
			return json.Number(strconv.FormatInt(i, 10)), nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return nil, err
			}
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, fmt.Errorf("line %d: %s is not a JSON number", n.Line, n.Value)
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
		default: // !!str, !!timestamp, !!binary: keep the text
			return n.Value, nil
		}
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
}
