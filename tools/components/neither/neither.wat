;; A component that is neither a command (no wasi:cli/run export) nor an HTTP proxy (no wasi:http/incoming-handler
;; export): a library exporting one interface and one function. The shim must refuse it at Create, naming its exports.
(component
  (core module $m
    (func (export "answer") (result i32) i32.const 42))
  (core instance $i (instantiate $m))
  (func $answer (result u32) (canon lift (core func $i "answer")))
  (instance $api (export "answer" (func $answer)))
  (export "runwasi-dotnet:neither/api@0.1.0" (instance $api))
  (export "answer" (func $answer)))
