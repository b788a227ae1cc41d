//! Plugin rule functions: Python callables called from CEL conditions, arguments and results
//! crossing as plain values (bool, int, float, str, None, list, dict).

use std::collections::HashMap;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyString, PyTuple};

use crate::rules::RuleFunction;

/// Wraps a Python callable as a CEL function: arguments and result cross as plain values.
pub fn python_function(callable: Py<PyAny>) -> RuleFunction {
    Arc::new(move |args: &[cel::Value]| {
        Python::attach(|py| {
            let py_args: Vec<Bound<'_, PyAny>> = args
                .iter()
                .map(|a| cel_to_py(py, a))
                .collect::<Result<_, _>>()?;
            let result = callable
                .bind(py)
                .call1(PyTuple::new(py, py_args).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
            py_to_cel(&result)
        })
    })
}

fn cel_to_py<'py>(py: Python<'py>, v: &cel::Value) -> Result<Bound<'py, PyAny>, String> {
    use cel::Value as V;
    let obj = match v {
        V::Null => py.None().into_bound(py),
        V::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        V::Int(i) => i.into_pyobject(py).map_err(|e| e.to_string())?.into_any(),
        V::UInt(u) => u.into_pyobject(py).map_err(|e| e.to_string())?.into_any(),
        V::Float(f) => f.into_pyobject(py).map_err(|e| e.to_string())?.into_any(),
        V::String(s) => PyString::new(py, s).into_any(),
        V::List(items) => {
            let converted: Vec<Bound<'py, PyAny>> = items
                .iter()
                .map(|x| cel_to_py(py, x))
                .collect::<Result<_, _>>()?;
            PyList::new(py, converted)
                .map_err(|e| e.to_string())?
                .into_any()
        }
        V::Map(m) => {
            let d = PyDict::new(py);
            for (k, val) in m.map.iter() {
                let key = match k {
                    cel::objects::Key::String(s) => s.to_string(),
                    other => format!("{other:?}"),
                };
                d.set_item(key, cel_to_py(py, val)?)
                    .map_err(|e| e.to_string())?;
            }
            d.into_any()
        }
        other => return Err(format!("cannot pass {other:?} to a Python rule function")),
    };
    Ok(obj)
}

fn py_to_cel(v: &Bound<'_, PyAny>) -> Result<cel::Value, String> {
    use cel::Value as V;
    if v.is_none() {
        return Ok(V::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(V::Bool(b.is_true()));
    }
    if let Ok(i) = v.extract::<i64>() {
        return Ok(V::Int(i));
    }
    if let Ok(f) = v.extract::<f64>() {
        return Ok(V::Float(f));
    }
    if let Ok(s) = v.extract::<String>() {
        return Ok(V::String(Arc::new(s)));
    }
    if let Ok(list) = v.cast::<PyList>() {
        let items: Vec<V> = list
            .iter()
            .map(|x| py_to_cel(&x))
            .collect::<Result<_, _>>()?;
        return Ok(V::List(Arc::new(items)));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut out = HashMap::new();
        for (k, val) in d.iter() {
            out.insert(
                k.extract::<String>().map_err(|e| e.to_string())?,
                py_to_cel(&val)?,
            );
        }
        return Ok(V::Map(out.into()));
    }
    Err(format!(
        "a rule function returned an unsupported {}",
        v.get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default()
    ))
}
