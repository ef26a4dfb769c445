;; A command component (it exports wasi:cli/run) that imports an interface no host provides: the shim must refuse it
;; at Create, when it links the component, rather than fail at Start.
(component
  (import "runwasi-dotnet:missing/host@0.1.0" (instance $host (export "ping" (func))))
  (core module $m
    (func (export "run") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (type $run-type (func (result (result))))
  (func $run (type $run-type) (canon lift (core func $i "run")))
  (instance $cli (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli)))
